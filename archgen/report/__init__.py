"""Reports that read a Plan: rich tables and JSON."""
