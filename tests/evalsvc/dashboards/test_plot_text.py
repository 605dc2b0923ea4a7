"""Labels are text: every user string in a figure reaches plotly.js escaped; templates stay as written."""

from __future__ import annotations

import json

from evalsvc.dashboards.plotlytext import figure_for_browser
from evalsvc.evaluations.kinds.evaluate.figures import confusion_matrix_figure

LINK = '<a href="https://evil.example/">x</a>'


def test_confusion_matrix_labels_are_escaped_and_counts_kept():
    fig = confusion_matrix_figure({"labels": [LINK, "b&c"], "confusion_matrix": [[3, 1], [0, 5]]})
    spec = figure_for_browser(json.loads(fig.to_json()))
    heatmap = spec["data"][0]
    assert heatmap["x"] == ['&lt;a href="https://evil.example/"&gt;x&lt;/a&gt;', "b&amp;c"]
    assert heatmap["y"] == heatmap["x"]
    assert heatmap["z"] == [[3, 1], [0, 5]]
    assert heatmap["hovertemplate"].endswith("<extra></extra>")  # plotly's own syntax, written by the figure code
    assert "<a" not in json.dumps({k: v for k, v in heatmap.items() if k != "hovertemplate"})


def test_titles_names_and_annotations_are_escaped():
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=[LINK], y=[1], name=LINK, text=[LINK], hovertext=[LINK]))
    fig.update_layout(title=f"Importance by {LINK}", xaxis_title=LINK)
    fig.add_annotation(text=LINK, x=0, y=1)
    spec = figure_for_browser(json.loads(fig.to_json()))
    assert "<a" not in json.dumps(spec)
    assert spec["layout"]["title"]["text"] == 'Importance by &lt;a href="https://evil.example/"&gt;x&lt;/a&gt;'
