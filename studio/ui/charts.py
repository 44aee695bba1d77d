"""Plotly figures from engine data (metrics records, counts, evaluation reports). No Gradio here.

Plotly draws its texts (titles, ticks, legends, hovers) with a little HTML of its own: every label that comes from a
file is escaped first (plotly shows the escaped characters as they were)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from studio.door.evaluation import SET_TITLES as EVALUATED_SETS
from studio.door.result import escape_html as escape

SET_TITLES = {"input": "All rows", "train_before": "Train (natural)", "train_after": "Train (balanced)",
              "val_a": EVALUATED_SETS["val_a"], "val_b": EVALUATED_SETS["val_b"]}
MANY_CELLS_SIDE = 25  # a confusion matrix with more classes than this shows its numbers on hover
MANY_BARS = 12  # classes past which the counts chart draws one bar per class, not one per class and set
MARKED_POINTS = 20  # a line with more points has no markers: each is an element the browser redraws with the chart
LAYOUT = dict(margin=dict(l=40, r=20, t=40, b=40), height=320, template="plotly_white",
              legend=dict(orientation="h", y=-0.2))


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#888"))
    fig.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, **LAYOUT)
    return fig


def class_counts(counts: dict | None) -> go.Figure:
    if not counts:
        return _empty("Class counts", "Load data to see class counts")
    sets = [s for s in SET_TITLES if s in counts]
    labels = list(counts[sets[0]])
    if len(labels) > MANY_BARS:
        return _many_class_counts(counts, labels)
    fig = go.Figure([go.Bar(name=escape(lb), x=[SET_TITLES[s] for s in sets], y=[counts[s].get(lb, 0) for s in sets],
                            text=[counts[s].get(lb, 0) for s in sets], textposition="auto") for lb in labels])
    fig.update_layout(title="Class counts before and after balancing", barmode="group", **LAYOUT)
    return fig


def _many_class_counts(counts: dict, labels: list[str]) -> go.Figure:
    """Many classes: one bar per class, stacked by set (train after balancing, Val A, Val B), the rarest first, so
    the classes that may be too small stand at the left."""
    order = sorted(labels, key=lambda lb: (counts["input"].get(lb, 0), lb))
    parts = [s for s in ("train_after", "val_a", "val_b") if s in counts]
    fig = go.Figure([go.Bar(name=SET_TITLES[s], x=[escape(lb) for lb in order],
                            y=[counts[s].get(lb, 0) for lb in order]) for s in parts])
    fig.update_layout(title=f"Rows per class ({len(labels)} classes, the rarest first)", barmode="stack",
                      xaxis_tickangle=-60, **{**LAYOUT, "height": 380,  # legend above: the tilted names fill below
                                              "legend": dict(orientation="h", x=1, xanchor="right", y=1.02,
                                                             yanchor="bottom")})
    return fig


def loss(records: list[dict]) -> go.Figure:
    train = [r for r in records if r.get("kind") == "train" and r.get("loss") is not None]
    if not train:
        return _empty("Training loss", "The loss appears here as training runs")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    steps = [r["step"] for r in train]
    fig.add_trace(go.Scatter(x=steps, y=[r["loss"] for r in train], name="loss", marker=dict(size=4),
                             mode="lines+markers" if len(steps) <= MARKED_POINTS else "lines"), secondary_y=False)
    fig.add_trace(go.Scatter(x=steps, y=[r.get("learning_rate") for r in train], name="learning rate",
                             line=dict(dash="dot")), secondary_y=True)
    fig.update_layout(title="Training loss (and learning rate)", **LAYOUT)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_yaxes(title_text="learning rate", secondary_y=True, showgrid=False)
    return fig


def memory(records: list[dict], estimate_gb: float | None = None, ram_estimate_gb: float | None = None) -> go.Figure:
    """GPU memory against the card's total and the estimate, or on a CPU the process's RAM against the RAM estimate,
    on an axis from zero (scaled to the data, a line that moved 0.06 GiB looked like a cliff)."""
    train = [r for r in records if r.get("kind") == "train"]
    if not train:
        return _empty("Memory", "Memory use appears here as training runs")
    steps = [r["step"] for r in train]
    fig = go.Figure()
    if train[-1].get("device") == "cuda":
        total = train[-1]["mem_total_gb"]
        fig.add_hrect(y0=0.9 * total, y1=0.95 * total, fillcolor="orange", opacity=0.15, line_width=0,
                      annotation_text="90%: close", annotation_position="top left")
        fig.add_hrect(y0=0.95 * total, y1=total, fillcolor="red", opacity=0.15, line_width=0,
                      annotation_text="95%: likely OOM", annotation_position="top left")
        for key, name in (("mem_reserved_gb", "reserved"), ("mem_allocated_gb", "allocated"),
                          ("mem_peak_reserved_gb", "peak reserved")):
            fig.add_trace(go.Scatter(x=steps, y=[r.get(key) for r in train], name=name, mode="lines"))
        fig.add_hline(y=total, line_dash="dash", annotation_text=f"total {total:.0f} GiB")
        if estimate_gb:
            fig.add_hline(y=estimate_gb, line_dash="dot", line_color="#7c3aed",
                          annotation_text=f"estimated peak {estimate_gb:.2f} GiB", annotation_position="bottom right")
        title = "GPU memory (GiB)"
    else:
        fig.add_trace(go.Scatter(x=steps, y=[r.get("rss_gb") for r in train], name="process RSS", mode="lines"))
        if any(r.get("rss_peak_gb") for r in train):  # the most the process held so far (the OS's high-water mark)
            fig.add_trace(go.Scatter(x=steps, y=[r.get("rss_peak_gb") for r in train], name="most so far",
                                     mode="lines", line=dict(dash="dash")))
        if ram_estimate_gb:
            fig.add_hline(y=ram_estimate_gb, line_dash="dot", line_color="#7c3aed",
                          annotation_text=f"RAM estimate {ram_estimate_gb:.2f} GiB", annotation_position="bottom right")
        title = f"Process memory, CPU (GiB; machine total {train[-1].get('mem_total_gb', 0):.0f})"
    fig.update_layout(title=title, xaxis_title="step", yaxis_rangemode="tozero", **LAYOUT)
    return fig


def eval_points(records: list[dict]) -> go.Figure:
    evals = [r for r in records if r.get("kind") == "eval"]
    if not evals:
        return _empty("Validation during training", "Val A scores appear here after the first validation "
                                                    "('Validate every N steps'; 0 turns it off)")
    steps = [r["step"] for r in evals]
    fig = go.Figure([go.Scatter(x=steps, y=[r.get("macro_f1") for r in evals], name="macro-F1",
                                mode="lines+markers"),
                     go.Scatter(x=steps, y=[r.get("minority_recall") for r in evals], mode="lines+markers",
                                name="minority recall" + (f" ({evals[-1]['minority_rows']} rows)"
                                                          if evals[-1].get("minority_rows") else ""))])
    fig.update_layout(title="Val A sample during training", xaxis_title="step", yaxis_range=[0, 1.05], **LAYOUT)
    return fig


def confusion(metrics: dict | None, title: str, normalized: bool = False,
              classes: list[str] | None = None, empty: str = "Evaluate a run to see its confusion matrix") -> go.Figure:
    """A set's confusion heatmap; ``classes``: only these rows and columns (the worst of many), named in the title;
    ``empty``: what it says without rows."""
    if not metrics or not metrics.get("confusion_matrix", {}).get("counts"):
        return _empty(title, empty)
    cm = metrics["confusion_matrix"]
    z = cm["normalized"] if normalized else cm["counts"]
    rows, columns = list(range(len(cm["labels"]))), list(range(len(cm["predicted"])))
    if classes is not None:
        keep = set(classes)
        rows = [i for i in rows if cm["labels"][i] in keep]
        columns = [j for j in columns if cm["predicted"][j] in keep or cm["predicted"][j] not in cm["labels"]]
        title += f" · {len(rows)} of {len(cm['labels'])} classes"
    z = [[z[i][j] for j in columns] for i in rows]
    many = len(rows) > MANY_CELLS_SIDE  # cell numbers past this many classes are unreadable: hover only
    text = [[f"{v:.0%}" if normalized else str(v) for v in row] for row in z]
    fig = go.Figure(go.Heatmap(z=z, x=[escape(cm["predicted"][j]) for j in columns],
                               y=[escape(cm["labels"][i]) for i in rows], text=text,
                               texttemplate=None if many else "%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
                               colorscale="Blues", showscale=False))
    layout = {**LAYOUT, "height": max(LAYOUT["height"], 14 * len(rows) + 160)}
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="true label", yaxis_autorange="reversed",
                      **layout)
    return fig


def pr_curve(curve: dict | None, threshold: float | None) -> go.Figure:
    if not curve:
        return _empty("Precision-recall", "Binary tasks only")
    fig = go.Figure(go.Scatter(x=curve["recall"], y=curve["precision"], mode="lines",
                               name=f"AP {curve['average_precision']:.3f}"))
    if threshold is not None and curve["thresholds"]:
        i = min(range(len(curve["thresholds"])), key=lambda k: abs(curve["thresholds"][k] - threshold))
        fig.add_trace(go.Scatter(x=[curve["recall"][i]], y=[curve["precision"][i]], mode="markers",
                                 marker=dict(size=12, color="red"), name=f"threshold {threshold:.2f}"))
    fig.update_layout(title=f"Precision-recall of '{escape(curve['positive'])}' (Val A)", xaxis_title="recall",
                      yaxis_title="precision", xaxis_range=[0, 1.02], yaxis_range=[0, 1.05], **LAYOUT)
    return fig


def probabilities(probs: dict[str, float], title: str) -> go.Figure:
    """One bar per class, tall enough that every class name and its percentage reads (a row per class)."""
    labels = list(probs)
    fig = go.Figure(go.Bar(x=[probs[lb] for lb in labels], y=[escape(lb) for lb in labels], orientation="h",
                           text=[f"{probs[lb]:.1%}" for lb in labels], textposition="outside", cliponaxis=False))
    fig.update_layout(title=title, xaxis_range=[0, 1.15], yaxis_autorange="reversed",
                      **{**LAYOUT, "height": 140 + 34 * max(2, len(labels)),
                         "margin": dict(l=10, r=20, t=40, b=30)})
    fig.update_yaxes(automargin=True)
    return fig


def probability_views(views: dict[str, dict[str, float]], title: str, empty: str = "") -> go.Figure:
    """Several models' probabilities for one text, one group of bars per class (a row per class); ``empty``: what
    the chart says when there are none (a first classifier's run: the LLM still training)."""
    if not views:
        return _empty(title, empty) if empty else probabilities({}, title)
    labels = list(next(iter(views.values())))
    fig = go.Figure([go.Bar(x=[probs[lb] for lb in labels], y=[escape(lb) for lb in labels], orientation="h",
                            name=name, text=[f"{probs[lb]:.0%}" for lb in labels], textposition="outside",
                            cliponaxis=False) for name, probs in views.items()])
    fig.update_layout(title=title, barmode="group", xaxis_range=[0, 1.15], yaxis_autorange="reversed",
                      **{**LAYOUT, "height": 160 + 22 * len(views) * max(2, len(labels)),
                         "margin": dict(l=10, r=20, t=40, b=30)})
    fig.update_yaxes(automargin=True)
    return fig


def memory_estimate(estimate: dict | None, measured_gb: float | None = None) -> go.Figure:
    """The estimate as one stacked bar (parts + CUDA context) against the GPU, with the guide's 90%/95% bands."""
    if not estimate:
        return _empty("Will it fit?", "The estimate appears here")
    fig = go.Figure()
    parts = {**estimate["parts_gb"], "CUDA context": estimate["context_gb"]}
    scale = estimate["peak_reserved_gb"] / max(sum(estimate["parts_gb"].values()), 1e-9)  # the margin, spread
    for name, gb in parts.items():
        gb = gb * (scale if name != "CUDA context" else 1)
        fig.add_trace(go.Bar(y=["estimate"], x=[gb], name=name.split(":")[0], orientation="h",
                             hovertemplate=f"{name}: %{{x:.2f}} GiB<extra></extra>"))
    if measured_gb:
        fig.add_trace(go.Bar(y=["measured"], x=[measured_gb + estimate["context_gb"]], orientation="h",
                             name="measured peak + context", marker_color="#555"))
    total = estimate.get("gpu_total_gb")
    if total:
        fig.add_vrect(x0=0.9 * total, x1=0.95 * total, fillcolor="orange", opacity=0.2, line_width=0,
                      annotation_text="90%", annotation_position="top left")
        fig.add_vrect(x0=0.95 * total, x1=total, fillcolor="red", opacity=0.2, line_width=0,
                      annotation_text="95%", annotation_position="top left")
        fig.add_vline(x=total, line_color="red", annotation_text=f"{total:.0f} GiB", annotation_position="top")
    title = f"Estimated peak: {estimate['needed_gb']:.2f} GiB" + (
        f" of {total:.1f} GiB ({100 * estimate['share']:.0f}%): {estimate['verdict']}" if total else "")
    fig.update_layout(title=title, barmode="stack", xaxis_title="GiB",  # the legend below the axis title
                      **{**LAYOUT, "height": 260, "legend": dict(orientation="h", y=-0.45),
                         "margin": dict(l=40, r=20, t=40, b=70)})
    return fig


def reliability(calibration: dict | None) -> go.Figure:
    """Confidence against accuracy per bin, before and after temperature scaling (Val A, held-out halves); the
    diagonal is perfect calibration."""
    if not calibration or not calibration.get("before", {}).get("bins"):
        return _empty("Calibration", "Evaluate a run (score mode) to see its reliability diagram")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dash", color="#999"),
                             name="perfectly calibrated"))
    where = calibration.get("on") or "Val A"  # another labelled file: the run's own rule, fitted on its Val A
    after = "after the run's rule" if calibration.get("on") else "after its rule (held-out halves)"
    for key, name in (("before", "before"), ("after", after)):
        bins = calibration[key]["bins"]
        fig.add_trace(go.Scatter(x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins],
                                 mode="lines+markers", name=f"{name} (ECE {calibration[key]['ece']:.3f})",
                                 text=[f"{b['count']} rows" for b in bins], marker=dict(size=8)))
    fig.update_layout(title=f"The fine-tuned LLM's calibration on {where}: how often it is right at each confidence",
                      xaxis_title="confidence (the top class's probability)", yaxis_title="accuracy",
                      xaxis_range=[0, 1.02], yaxis_range=[0, 1.05], **LAYOUT)
    return fig
