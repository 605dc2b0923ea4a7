"""Report figures: evalsvc's SVG renderer beside plotly's own static export (kaleido), figure by figure.

The report draws each job kind's plotly figures as SVG for WeasyPrint. Two ways
to get that SVG are weighed here on the figures the run pages draw (built by
the kinds' own figure functions from representative results):

* ``evalsvc.reports.svg.figure_svg``: pure Python, in the web process;
* ``plotly.io.to_image(format="svg")`` through kaleido, which drives a
  headless Chromium: cold (a browser started for the call, plotly's default)
  and warm (one browser kept running by ``kaleido.start_sync_server``).

For each figure: milliseconds per figure (median over rounds, the two
renderers alternating in each round so load on the machine hits both alike),
the SVG's size, and how many of the figure's labels (axis titles, category
labels, legend entries) are set in full in it (a label cut to "abc…" does not
count). The table is printed last.

Run ``python benchmarks/report_figures.py`` (``--rounds N``; ``--record`` to
append the table to benchmarks/RESULTS.md). kaleido is optional: without it,
or without a Chromium it can find, only the SVG renderer is measured and the
table says why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import plotly.graph_objects as go

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsvc.settings.test")

import django  # noqa: E402

django.setup()

from evalsvc.evaluations.kinds.evaluate.figures import confusion_matrix_figure, predicted_vs_actual_figure  # noqa: E402
from evalsvc.evaluations.kinds.explain.figures import explain_figures, image_overlays  # noqa: E402
from evalsvc.reports.svg import figure_svg  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SVG = "{http://www.w3.org/2000/svg}"


def figures() -> list[tuple[str, go.Figure]]:
    rng = np.random.default_rng(7)
    out: list[tuple[str, go.Figure]] = []
    labels = [str(i) for i in range(10)]
    matrix = rng.integers(0, 40, size=(10, 10)) + np.eye(10, dtype=int) * 150
    out.append(
        ("confusion matrix 10×10", confusion_matrix_figure({"labels": labels, "confusion_matrix": matrix.tolist()}))
    )
    y = rng.normal(150, 60, 500)
    out.append(
        ("predicted vs actual, 500 rows",
         predicted_vs_actual_figure({"residuals": {"y_true": y.tolist(), "y_pred": (y + rng.normal(0, 30, 500)).tolist()}}))
    )  # fmt: skip
    features = [f"worst concave points {i}" if i % 3 == 0 else f"mean_radius_{i}" for i in range(30)]
    values = rng.normal(size=(100, 30))
    explained = {
        "features": features,
        "global": {"importance": np.abs(values).mean(0).tolist(), "values": values.tolist(),
                   "feature_values": rng.normal(size=(100, 30)).tolist(), "rows": 100},
        "explained": [{"row": 3, "values": values[3].tolist(), "base_value": 0.4, "output": 0.9, "target": "1"}],
    }  # fmt: skip
    for title, fig in explain_figures(explained):
        out.append((f"explain: {title.lower()}", fig))
    ys, xs = np.mgrid[0:64, 0:64]
    thumb = np.stack([xs * 4, ys * 4, np.full_like(xs, 128)], -1).tolist()
    heat = (np.sin(xs / 9) * np.cos(ys / 11)).tolist()
    image = {
        "row": 2,
        "name": "cat.png",
        "target": "cat",
        "label": "cat",
        "image": {"thumb": thumb, "heat": heat, "patch": 8},
    }
    out += [("explain: image with heatmap 64×64", fig) for _, fig in image_overlays({"explained": [image]})]
    configs = [f"{b}/cpu/fp32 b{n} t{t}" for b in ("onnxruntime", "openvino") for n in (1, 32) for t in (1, 4)]
    bars = go.Figure(
        [go.Bar(name=f"{name} (with preprocessing)", x=configs, y=rng.uniform(0.2, 5, len(configs)))
         for name in ("p50 latency", "p99 latency")]
    )  # fmt: skip
    bars.update_layout(title="Latency per configuration", xaxis_title="configuration", yaxis_title="ms")
    out.append(("profile: latency per configuration", bars))
    return out


def expected_labels(fig: go.Figure) -> list[str]:
    """The strings a reader needs whole: axis titles, category labels, and legend entries when there is a legend."""
    spec = fig.to_plotly_json()
    layout, traces = spec.get("layout") or {}, spec.get("data") or []
    wanted: list[str] = []
    for axis in ("xaxis", "yaxis"):
        title = (layout.get(axis) or {}).get("title")
        text = title.get("text") if isinstance(title, dict) else title
        if text:
            wanted.append(str(text))
    named = [t for t in traces if t.get("name") and t.get("type") not in ("heatmap", "image")]
    if len(named) > 1:
        wanted += [str(t["name"]) for t in named]
    for trace in traces:
        if trace.get("type") in ("bar", "waterfall"):
            horizontal = trace.get("orientation") == "h"
            cats = trace.get("y") if horizontal else trace.get("x")
            wanted += [str(c) for c in (list(cats) if cats is not None else []) if not _number(c)]
        elif trace.get("type") == "scatter" and trace.get("y") is not None:
            wanted += [str(c) for c in list(trace["y"]) if not _number(c)]
    return list(dict.fromkeys(wanted))


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def labels_in_full(svg: str, wanted: list[str]) -> int:
    root = ET.fromstring(svg)
    texts = {" ".join("".join(t.itertext()).split()) for t in root.iter(f"{SVG}text")}
    # A label wrapped onto lines (tspans of one text element) is whole; so is one plotly set on one line.
    return sum(1 for label in wanted if " ".join(label.split()) in texts)


def ours(fig: go.Figure) -> str:
    return figure_svg(fig, show_title=False)


def kaleido_renderer() -> tuple[Callable[[go.Figure], str] | None, Callable[[go.Figure], str] | None, str]:
    """(cold, warm, note): kaleido's two ways, or None with the reason it cannot run here."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return None, None, "kaleido is not installed (pip install kaleido; it also needs a Chrome or Chromium)"

    def cold(fig: go.Figure) -> str:
        return fig.to_image(format="svg", width=640, height=400).decode("utf-8")

    def warm(fig: go.Figure) -> str:
        return fig.to_image(format="svg", width=640, height=400).decode("utf-8")

    try:
        cold(go.Figure(go.Bar(x=["a"], y=[1])))
    except Exception as exc:
        return None, None, f"kaleido could not render: {type(exc).__name__}: {str(exc)[:160]}"
    return cold, warm, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()
    figs = figures()
    cold, warm, note = kaleido_renderer()
    rows = []
    server = False
    if warm is not None:
        import kaleido

        kaleido.start_sync_server(silence_warnings=True)
        server = True
    try:
        for name, fig in figs:
            wanted = expected_labels(fig)
            times: dict[str, list[float]] = {"ours": [], "warm": []}
            svgs: dict[str, str] = {}
            for round_ in range(args.rounds):
                order = [("ours", ours), ("warm", warm)] if round_ % 2 == 0 else [("warm", warm), ("ours", ours)]
                for key, render in order:
                    if render is None:
                        continue
                    t0 = time.perf_counter()
                    svgs[key] = render(fig)
                    times[key].append((time.perf_counter() - t0) * 1000)
            row = {
                "figure": name,
                "labels": len(wanted),
                "ours_ms": statistics.median(times["ours"]),
                "ours_kb": len(svgs["ours"].encode()) / 1024,
                "ours_full": labels_in_full(svgs["ours"], wanted),
            }
            if "warm" in svgs:
                row |= {
                    "warm_ms": statistics.median(times["warm"]),
                    "kaleido_kb": len(svgs["warm"].encode()) / 1024,
                    "kaleido_full": labels_in_full(svgs["warm"], wanted),
                }
            rows.append(row)
    finally:
        if server:
            import kaleido

            kaleido.stop_sync_server(silence_warnings=True)
    cold_ms = None
    if cold is not None:
        samples = []
        for _ in range(min(3, args.rounds)):
            t0 = time.perf_counter()
            cold(figs[0][1])
            samples.append((time.perf_counter() - t0) * 1000)
        cold_ms = statistics.median(samples)
    return report(rows, cold_ms, note, args)


def _chromium() -> str:
    import shutil
    import subprocess

    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not found:
        return "no Chromium on PATH"
    done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return " ".join(done.stdout.split()[:2]) or found


def report(rows: list[dict[str, Any]], cold_ms: float | None, note: str, args: argparse.Namespace) -> int:
    versions = f"python {platform.python_version()}, plotly {plotly.__version__}"
    try:
        from importlib.metadata import version

        import kaleido

        versions += f", kaleido {version('kaleido')}, {kaleido.__name__} driving {_chromium()}"
    except ImportError:
        pass
    lines = [
        f"## Report figures: SVG renderer vs kaleido — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} logical cores, load average "
        f"{tuple(round(x, 2) for x in os.getloadavg())}; versions: {versions}",
        f"- Method: `benchmarks/report_figures.py`, {args.rounds} rounds per figure, the renderers alternating; "
        "ms are medians; labels in full counts axis titles, category labels and legend entries set whole.",
        "",
        "| figure | SVG renderer ms | kaleido warm ms | ratio | SVG renderer KiB | kaleido KiB | labels in full: ours | kaleido |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        warm = r.get("warm_ms")
        lines.append(
            f"| {r['figure']} | {r['ours_ms']:.1f} | {warm:.0f} | {warm / r['ours_ms']:.0f}× | {r['ours_kb']:.0f} | "
            f"{r['kaleido_kb']:.0f} | {r['ours_full']}/{r['labels']} | {r['kaleido_full']}/{r['labels']} |"
            if warm is not None
            else f"| {r['figure']} | {r['ours_ms']:.1f} | — | — | {r['ours_kb']:.0f} | — | {r['ours_full']}/{r['labels']} | — |"
        )
    lines.append("")
    if cold_ms is not None:
        lines.append(
            f"- kaleido cold (a Chromium started for the call, plotly's default without a server): {cold_ms:.0f} ms "
            "for the first figure."
        )
    if note:
        lines.append(f"- {note}.")
    text = "\n".join(lines)
    if args.record:
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n" + text + "\n")
        print(f"appended to {RESULTS.relative_to(ROOT)}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
