"""The sweep plot: validation accuracy (test accuracy for an evaluation sweep) against each swept
parameter, one panel per parameter. Seeds swept with other keys are repeats, not a parameter: they get
no panel, and with one other key, each setting's mean ± std over its seeds is drawn over its jobs.

matplotlib is imported when a plot is drawn, not with this module.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from pathlib import Path

from lenet_exp.files import COMPLETED, FAILED
from lenet_exp.sweeps.records import SEED_KEY, Summary, as_float, ranking_metric, setting_keys


def val_acc_figure(summary: Summary):
    """A matplotlib Figure (no pyplot: no GUI backend, safe in any process)."""
    from matplotlib.figure import Figure

    metric = ranking_metric(summary.jobs)
    # a panel for each key that makes settings (not where or how fast a job ran, unless a speed study swept only
    # that), none for the seed where other keys are swept
    settings = setting_keys(summary.swept)
    keys = settings or [key for key in summary.swept if key != SEED_KEY] or summary.swept or ["job"]
    # a setting's mean at its value of the panel's key: where other keys are swept too, settings of one value
    # would stand at one place, not to be told apart (the table ranks them)
    means_drawn = SEED_KEY in summary.swept and len(settings) == 1 and metric
    # ... which a panel of their own shows then: each setting's mean ± std, as the table ranks them
    settings_panel = SEED_KEY in summary.swept and len(settings) > 1 and metric
    panels = len(keys) + bool(settings_panel)
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    figure = Figure(figsize=(4.2 * columns, 3.4 * rows), dpi=100)
    for i, key in enumerate(keys):
        ax = figure.add_subplot(rows, columns, i + 1)
        def value(r) -> str:
            return str(r.job) if key == "job" else r.params.get(key, "")

        # a parameter that some trials lack (sgd's momentum in a study of optimizer=choice(adam,sgd)): a panel of
        # numbers of the trials that have it; else categories, "" the jobs without it
        having = [r for r in summary.jobs if value(r) != ""]
        jobs = having if having and all(as_float(value(r)) is not None for r in having) else summary.jobs
        values = [value(r) for r in jobs]
        numbers = [as_float(v) for v in values]
        if all(n is not None for n in numbers):
            xs = numbers
            place = as_float
            positive = [x for x in xs if x > 0]
            decades = key not in summary.linear and positive and max(xs) / min(positive) >= 10
            if decades:  # as learning rates are swept (dropout drawn from 0.01 to 0.5 is not)
                if min(xs) > 0:
                    ax.set_xscale("log")
                elif min(xs) == 0:  # weight_decay=0,1e-4,1e-2: linear from 0 to the smallest, as 0 has no log
                    ax.set_xscale("symlog", linthresh=min(positive), linscale=0.5)
            ticks = dict(sorted(zip(xs, values)))
            if len(ticks) <= 8 and all(len(v) <= 8 for v in ticks.values()):  # a grid: label its values
                ax.set_xticks(list(ticks), list(ticks.values()), minor=False)
                ax.minorticks_off()
            else:  # a study's values
                label_numbers(ax, max(xs) / min(xs) if ax.get_xscale() == "log" else None)
        else:  # categories in the order the sweep named them
            categories = list(dict.fromkeys(values))
            xs = [categories.index(v) for v in values]
            place = categories.index
            labels = short_labels(categories)
            crowded = len(categories) > 3 or sum(map(len, labels)) > 3 * LABEL_CHARACTERS // 2  # side by side: overlap
            ax.set_xticks(range(len(categories)), labels, rotation=20 if crowded else 0, ha="right" if crowded else "center")
        labelled = set()
        for x, r in zip(xs, jobs):
            result, colour = getattr(r, metric), "tab:red" if r.status == FAILED else "tab:orange"
            if r.status == COMPLETED and result is not None:
                label = COMPLETED if COMPLETED not in labelled else None
                ax.scatter([x], [result], color="tab:blue", zorder=3, label=label)
                labelled.add(COMPLETED)
            elif result is not None:  # stopped (or diverged) after it had a best val accuracy: hollow
                label = f"{r.status} (best so far)" if r.status not in labelled else None
                ax.scatter([x], [result], facecolors="none", edgecolors=colour, zorder=3, label=label)
                labelled.add(r.status)
            else:  # no result to place on the y axis: mark where it sat on the x axis
                label = f"{r.status}" if r.status + " line" not in labelled else None
                ax.axvline(x, color=colour, linestyle="--", alpha=0.7, label=label)
                labelled.add(r.status + " line")
        if means_drawn:
            draw_means_over_seeds(ax, summary.groups, key, place, metric)
        ax.update_datalim([(x, 0.5) for x in xs], updatey=False)  # a vertical line alone widens no x axis
        ax.autoscale_view()
        without = len(summary.jobs) - len(jobs)
        ax.set_xlabel(f"{key} ({without} job{'s' if without > 1 else ''} without it)" if without else key)
        ax.set_ylabel("best val accuracy" if metric == "val_acc" else "test accuracy")
        ax.grid(True, alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8, loc="best")
    if settings_panel:
        draw_settings(figure.add_subplot(rows, columns, panels), summary.groups, settings, metric)
    figure.suptitle(f"{Path(summary.sweep_dir).name}: {len(summary.jobs)} jobs ({summary.counts_text})", fontsize=10)
    figure.tight_layout()
    return figure


def draw_means_over_seeds(ax, groups: list[dict], key: str, place, metric: str) -> None:
    """Each setting's mean ± std (the sample std; none for one seed) of ``metric`` over its seeds' completed
    jobs, at its value of ``key`` (placed by ``place``), beside the jobs' own points."""
    labelled = False
    for group in groups:
        mean, std = group[f"{metric}_mean"], group[f"{metric}_std"]
        if mean is None:
            continue
        value = group["params"].get(key)  # None for the jobs without the key: at "" among categories, or not drawn
        x = place("" if value is None else value)
        if x is None:
            continue
        ax.errorbar([x], [mean], yerr=[std or 0.0], fmt="_", markersize=14,
                    color="black", capsize=4, zorder=4, label=None if labelled else "mean ± std over seeds")
        labelled = True


MOST_SETTINGS = 15  # drawn on a settings panel: 40 labels of a 200-job sweep ran into one black band


def draw_settings(ax, groups: list[dict], keys: list[str], metric: str) -> None:
    """Each setting's mean ± std of ``metric`` over its seeds, one place a setting (its values of ``keys``, the
    best first, at most :data:`MOST_SETTINGS`): two swept keys or more, whose settings the keys' own panels cannot
    tell apart."""
    ranked = [group for group in groups if group[f"{metric}_mean"] is not None]  # as the table ranks them
    of_all = f" (the best {MOST_SETTINGS} of {len(ranked)})" if len(ranked) > MOST_SETTINGS else ""
    ranked = ranked[:MOST_SETTINGS]
    labels = short_labels([", ".join(str(group["params"].get(key)) for key in keys) for group in ranked])
    for x, group in enumerate(ranked):
        ax.errorbar([x], [group[f"{metric}_mean"]], yerr=[group[f"{metric}_std"] or 0.0], fmt="o", color="black",
                    capsize=4)
    crowded = len(ranked) > 3
    ax.set_xticks(range(len(ranked)), labels, rotation=30 if crowded else 0, ha="right" if crowded else "center",
                  fontsize=8)
    ax.set_xlabel(", ".join(keys) + of_all)
    ax.set_ylabel(f"{'val' if metric == 'val_acc' else 'test'} accuracy, mean ± std over seeds")
    ax.grid(True, alpha=0.3)


def label_numbers(ax, log_ratio: float | None) -> None:
    """x-axis labels that fit side by side, as numbers (0.002, not 2×10⁻³ or 0.0020): on a log axis of about
    one decade matplotlib labelled its minor ticks too, and on a linear one seven labels of six characters;
    either ran into each other. ``log_ratio``: the largest value over the smallest, on a log axis."""
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if log_ratio is None:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    else:
        decades = math.log10(log_ratio)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 1.2 else (1.0, 3.0) if decades <= 2.5
                                              else (1.0,)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))


@contextlib.contextmanager
def without_matplotlibs_warnings():
    """While a figure is drawn: matplotlib's warnings, each with its source line, tell a user nothing to do.
    A character that the font lacks (a sweep folder named in Japanese) is drawn as a box; a panel's first
    point alone on a log axis (the other jobs diverged) gets a wider axis than its one value."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from")
        warnings.filterwarnings("ignore", message="Attempting to set identical low and high xlims")
        yield


LABEL_CHARACTERS = 24


def short_labels(values: list[str]) -> list[str]:
    """Tick labels that fit under a panel: long values (paths, such as a sweep over checkpoints) lose
    what they all share at the start and the end, then their middle."""
    if all(len(v) <= LABEL_CHARACTERS for v in values) or len(values) < 2:
        return [v if len(v) <= LABEL_CHARACTERS else "…" + v[-LABEL_CHARACTERS + 1:] for v in values]
    start = len(os.path.commonprefix(values))
    end = len(os.path.commonprefix([v[::-1] for v in values]))
    end = min(end, min(len(v) for v in values) - start)  # where one value holds another
    labels = []
    for v in values:
        label = ("…" if start else "") + v[start:len(v) - end] + ("…" if end else "")
        if len(label) > LABEL_CHARACTERS:
            half = LABEL_CHARACTERS // 2
            label = label[:half] + "…" + label[-(LABEL_CHARACTERS - half - 1):]
        labels.append(label)
    return labels
