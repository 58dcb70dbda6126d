"""Whatever a config holds, the SVG stays well-formed XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from archgen.api import plan
from archgen.errors import SpecError
from archgen.report.diagram import plan_to_svg
from archgen.report.svg_text import xml_attr, xml_text

BACKBONE = "conf/peers/smp_unet_resnet50.yaml"


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\ufffe", "\ud800"])
def test_characters_xml_cannot_hold_are_written_visibly(char):
    text = f"a{char}<b>&"
    ET.fromstring(f"<t a={xml_attr(text)}>{xml_text(text)}</t>")
    assert "&lt;b&gt;&amp;" in xml_text(text)


@pytest.mark.parametrize("char", ["\x01", "\n", "\u2028", "\x85"])
def test_a_weights_path_with_control_characters_is_refused(char):
    with pytest.raises(SpecError, match="encoder.weights.*non-printable"):
        plan(BACKBONE, [f"encoder.weights='w{char}x.weights.h5'"])


def test_a_backbone_diagram_with_an_unusual_weights_path_is_well_formed():
    svg = plan_to_svg(plan(BACKBONE, ["encoder.weights='dir <&> ü/w.weights.h5'"]))
    root = ET.fromstring(svg)
    assert "dir <&> ü/w.weights.h5" in "".join(root.itertext())
