"""The static figure renderer: the dashboard's figures as SVG, with no browser and no kaleido."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import plotly.graph_objects as go
import pytest

from evalsvc.evaluations.kinds.evaluate.figures import (
    confusion_matrix_figure,
    predicted_vs_actual_figure,
    residuals_figure,
)
from evalsvc.reports.svg import UnsupportedFigure, colorscale_at, figure_svg, nice_ticks
from evalsvc.reports.svg.colour import colorscale_rgb

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]


def test_confusion_matrix_draws_one_cell_per_count_with_its_number():
    result = {"labels": [0, 1], "confusion_matrix": [[61, 3], [4, 103]]}
    root = parse(figure_svg(confusion_matrix_figure(result)))
    labels = texts(root)
    for count in ("61", "3", "4", "103"):
        assert count in labels
    assert "Predicted label" in labels and "True label" in labels and "Confusion matrix" in labels
    cells = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("stroke") == "#ffffff"]
    assert len(cells) == 4
    # The darkest cell is the largest count; the reversed y axis puts true label 0 on top.
    darkest = min(cells, key=lambda r: sum(int(c) for c in r.get("fill")[4:-1].split(",")))
    assert float(darkest.get("y")) > min(float(c.get("y")) for c in cells)


def test_regression_figures_plot_every_point_and_the_reference_lines():
    y_true, y_pred = [10.0, 20.0, 30.0, 40.0], [12.0, 18.0, 33.0, 39.0]
    result = {"residuals": {"y_true": y_true, "y_pred": y_pred}}
    root = parse(figure_svg(predicted_vs_actual_figure(result)))
    assert len(list(root.iter("{http://www.w3.org/2000/svg}circle"))) == 4 + 1  # points + legend marker
    assert any(p.get("stroke-dasharray") for p in root.iter("{http://www.w3.org/2000/svg}polyline"))
    assert {"rows", "perfect"} <= set(texts(root))
    root = parse(figure_svg(residuals_figure(result)))
    assert len(list(root.iter("{http://www.w3.org/2000/svg}circle"))) == 4
    hline = [ln for ln in root.iter("{http://www.w3.org/2000/svg}line") if ln.get("stroke-dasharray")]
    assert len(hline) == 1 and hline[0].get("y1") == hline[0].get("y2")


def test_text_is_escaped_and_unicode_kept():
    fig = go.Figure(go.Bar(x=[0.3, 0.1], y=["平均半径", "<b>&x"], orientation="h"))
    fig.update_layout(title="特征重要性 <script>")
    svg = figure_svg(fig)
    assert "<script>" not in svg and "&lt;b&gt;&amp;x" in svg
    assert "平均半径" in texts(parse(svg))


def test_unsupported_traces_are_refused_not_drawn_wrong():
    with pytest.raises(UnsupportedFigure):
        figure_svg(go.Figure(go.Pie(values=[1, 2])))


def test_scales():
    assert nice_ticks(0, 1) == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(-83, 340) == [-0.0, 100, 200, 300]
    assert nice_ticks(0.9, 0.97) == pytest.approx([0.9, 0.92, 0.94, 0.96])
    scale = [[0, "rgb(0,0,0)"], [1, "rgb(255,255,255)"]]
    assert colorscale_at(scale, 0.5) == "rgb(128,128,128)"
    assert colorscale_at(scale, 2) == "rgb(255,255,255)"
    # The many-at-once form gives the same colours.
    rdbu = [[0, "rgb(5,48,97)"], [0.25, "rgb(67,147,195)"], [0.5, "rgb(247,247,247)"], [1, "rgb(103,0,31)"]]
    fractions = [-1, 0, 0.1, 0.25, 0.3333, 0.5, 0.77, 1, 3]
    together = colorscale_rgb(rdbu, fractions)
    assert [f"rgb({int(r)},{int(g)},{int(b)})" for r, g, b in together] == [colorscale_at(rdbu, f) for f in fractions]


def test_long_legend_entries_and_category_labels_are_set_in_full():
    names = ["onnxruntime/cpu/fp32 batch 32 threads 4", "openvino/cpu/int8 batch 32 threads 4"]
    configs = ["onnxruntime/cpu/fp32 b1 t1", "openvino/cpu/fp32 b8 t2", "tensorrt/cuda:0/fp16 b32 t1"]
    fig = go.Figure([go.Bar(name=n, x=configs, y=[1, 2, 3]) for n in names])
    features = ["worst concave points of the cell nuclei", "mean_radius"]
    bars = go.Figure(go.Bar(x=[0.3, 0.1], y=features, orientation="h"))
    for figure, wanted in ((fig, names + configs), (bars, features)):
        root = parse(figure_svg(figure))
        labels = texts(root)
        assert not any("…" in label for label in labels), labels
        for text in wanted:  # each on its own text element, wrapped onto lines at separators when long
            assert text in labels, (text, labels)
        width = float(root.get("width"))
        for node in root.iter("{http://www.w3.org/2000/svg}text"):  # nothing starts off the figure
            assert 0 <= float(node.get("x")) <= width


def test_a_waterfall_stacks_as_plotly_does():
    fig = go.Figure(
        go.Waterfall(
            measure=["absolute", "relative", "relative", "total"], x=["base", "a", "b", "out"], y=[2, 3, -1, 99]
        )
    )
    root = parse(figure_svg(fig, show_title=False))
    bars = [
        r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("fill") in ("#3D9970", "#FF4136", "#4499FF")
    ]
    assert [b.get("fill") for b in bars] == ["#4499FF", "#3D9970", "#FF4136", "#4499FF"]
    heights = [float(b.get("height")) for b in bars]
    # base 2, +3, -1, total 4 (the total's own y is not used): heights in proportion
    assert heights[1] / heights[0] == pytest.approx(1.5, rel=0.02)
    assert heights[2] / heights[0] == pytest.approx(0.5, rel=0.02)
    assert heights[3] / heights[0] == pytest.approx(2.0, rel=0.02)


def test_an_image_is_embedded_at_its_own_pixels_with_the_first_row_on_top():
    import base64
    import io

    from PIL import Image

    pixels = [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]], [[0, 0, 0], [9, 9, 9]]]
    root = parse(figure_svg(go.Figure(go.Image(z=pixels))))
    (picture,) = root.iter("{http://www.w3.org/2000/svg}image")
    png = Image.open(io.BytesIO(base64.b64decode(picture.get("href").split(",", 1)[1])))
    assert png.size == (2, 3) and png.getpixel((0, 0)) == (255, 0, 0) and png.getpixel((1, 2)) == (9, 9, 9)
    assert float(picture.get("width")) / float(picture.get("height")) == pytest.approx(2 / 3, rel=0.02)
