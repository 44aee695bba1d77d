"""Which adapter a run keeps: the best periodic evaluation's adapter weights are kept in memory as training goes
(``keep``, the callback's ``on_best``), and put back at the end only when they are clearly better than the last
adapter on the periodic sample's rows (``restore``): keeping the best sample figure kept noise (docs/benchmarks.md,
"Which adapter a run keeps")."""

from __future__ import annotations

from typing import Callable

from studio.evaluate.periodic import CLEARLY_BETTER, share_earlier_better


class BestAdapter:
    def __init__(self):
        self.best: dict | None = None  # the best evaluation's step, macro-F1, predictions and adapter weights

    def keep(self, model, step: int, metrics: dict) -> None:
        """The best adapter so far (by the periodic Val A macro-F1), kept in memory."""
        self.best = {"step": step, "macro_f1": metrics.get("macro_f1"), "predictions": metrics.get("predictions"),
                     "weights": {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters()
                                 if p.requires_grad}}

    def restore(self, model, step: int, latest: dict | None, classes: int, log: Callable[[str], None]) -> int:
        """Put the best periodic evaluation's adapter weights back into ``model`` when they are clearly better than
        the last adapter (on the periodic sample's rows; an evaluation without rows: when it is the best); returns
        the step whose adapter is kept."""
        best = self.best
        if best is None or best["step"] == step:
            return step
        sure = share_earlier_better(best, latest, classes)
        if sure is not None and latest["macro_f1"] is not None and latest["macro_f1"] >= best["macro_f1"]:
            log(f"Keeping the last adapter (step {step}): the latest periodic evaluation (step {latest['step']}, "
                f"Val A sample macro-F1 {latest['macro_f1']:.3f}) is as good as the best (step {best['step']}).")
            return step
        if sure is not None and sure < CLEARLY_BETTER:
            log(f"Keeping the last adapter (step {step}): the best periodic evaluation (step {best['step']}, Val "
                f"A sample macro-F1 {best['macro_f1']:.3f}) beats the latest (step {latest['step']}, "
                f"{latest['macro_f1']:.3f}) in {sure:.0%} of resamples of the sample's rows; an earlier adapter "
                f"is kept only when it is clearly better ({CLEARLY_BETTER:.0%}).")
            return step
        import torch  # (loaded by the run already)

        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, value in best["weights"].items():
                params[name].copy_(value.to(params[name].device))
        log(f"Keeping the best adapter: step {best['step']} (Val A sample macro-F1 {best['macro_f1']:.3f}), "
            f"not the last, step {step}" + (f": it is better in {sure:.0%} of resamples of the sample's rows."
                                            if sure is not None else "."))
        return best["step"]
