"""The report's statistics (dislab.report.stats) against scipy and numbers worked by hand, and the page's
comparisons and analyses on hand-made run directories with known scores."""

from __future__ import annotations

import csv
import json
import os
from fractions import Fraction

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps

from dislab.report import stats
from dislab.report.page import build, main


def test_bootstrap_interval_is_the_percentiles_of_resampled_means():
    d = np.array([0.1, 0.3, -0.05, 0.2, 0.15])
    low, high = stats.bootstrap_ci(d)
    means = d[np.random.default_rng(0).integers(0, 5, (10_000, 5))].mean(axis=1)  # the same draws, by hand
    assert (low, high) == (np.quantile(means, 0.025), np.quantile(means, 0.975))
    assert low < d.mean() < high and stats.bootstrap_ci(d) == (low, high)  # a fixed seed: the same every time
    assert stats.bootstrap_ci([0.2, 0.2, 0.2]) == pytest.approx((0.2, 0.2))


def test_wilcoxon_matches_scipy_and_the_exact_distribution():
    d = [0.3, -0.1, 0.25, 0.4, 0.05, -0.02, 0.6]
    assert stats.wilcoxon_p(d) == sps.wilcoxon(d).pvalue
    # five positive differences: W- = 0, the least of 2^5 equally likely sign patterns, two-sided: 2/32
    assert stats.wilcoxon_p([0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(2 / 32)
    assert np.isnan(stats.wilcoxon_p([0.0, 0.0])) and np.isnan(stats.wilcoxon_p([]))


def test_pairs_are_matched_by_seed():
    seeds, d = stats.paired({0: 0.1, 1: 0.2, 2: 0.3, 3: float("nan")}, {1: 0.5, 2: 0.1, 3: 0.4, 4: 0.9})
    assert seeds == [1, 2] and d.tolist() == pytest.approx([0.3, -0.2])


@pytest.mark.parametrize("direction,winner", [("↑", "beta_tcvae"), ("↓", "vae"), ("?", None)])
def test_a_winner_only_where_the_interval_excludes_zero_with_five_seeds(direction, winner):
    base = {s: 0.1 + 0.01 * s for s in range(5)}
    better = {s: v + 0.1 + 0.01 * (s % 2) for s, v in base.items()}
    c = stats.compare("mig", "beta_tcvae", "vae", direction, base, better)
    assert c.n == 5 and c.low > 0 and c.diff == pytest.approx(0.104)
    assert c.winner == winner
    if winner:
        assert f"{winner} is better" in c.sentence and "too few" not in c.sentence
        assert c.verdict == f"{winner} is better: the interval excludes 0."
    else:
        assert "is better" not in c.sentence and "no better side" in c.sentence

    four = stats.compare("mig", "beta_tcvae", "vae", direction, base, {s: better[s] for s in range(4)})
    assert four.n == 4 and four.low > 0 and four.winner is None  # the interval excludes 0, but 4 seeds
    assert "4 paired seeds are too few to decide (at least 5 are needed)" in four.sentence
    assert four.verdict == "4 seeds: too few to decide (at least 5 are needed)."

    mixed = stats.compare("mig", "beta_tcvae", "vae", direction, base,
                          {s: v + (0.05 if s % 2 else -0.05) for s, v in base.items()})
    assert mixed.low < 0 < mixed.high and mixed.winner is None and "includes 0" in mixed.sentence


def test_ranks_best_first_with_ties_sharing():
    means = {"a": 0.5, "b": 0.7, "c": 0.5, "d": float("nan")}
    assert stats.ranks(means, "↑") == {"b": 1.0, "a": 2.5, "c": 2.5}
    assert stats.ranks(means, "↓") == {"a": 1.5, "c": 1.5, "b": 3.0}


def test_variance_shares_are_a_nested_anova_worked_by_hand():
    # A: a1 {1, 3}, a2 {5, 7}; B: b1 {2, 4}. Grand mean 11/3; total SS 70/3;
    # methods (A 4, B 3): 4 (1/3)^2 + 2 (2/3)^2 = 4/3; settings within A (2, 6 about 4): 2*4 + 2*4 = 16;
    # seeds: 2 + 2 + 2 = 6
    records = [("A", "a1", 1), ("A", "a1", 3), ("A", "a2", 5), ("A", "a2", 7), ("B", "b1", 2), ("B", "b1", 4)]
    s = stats.variance_shares(records)
    assert s["n"] == 6
    assert s["method"] == pytest.approx(float(Fraction(2, 35)))
    assert s["setting"] == pytest.approx(float(Fraction(24, 35)))
    assert s["seed"] == pytest.approx(float(Fraction(9, 35)))
    assert np.isnan(stats.variance_shares([("A", "a", 1.0), ("B", "b", 1.0)])["method"])  # nothing varies


def test_spearman_matrix_against_scipy_pair_by_pair():
    rng = np.random.default_rng(1)
    a = rng.normal(size=12)
    table = {"mig": list(a), "sap": list(a + 0.5 * rng.normal(size=12)), "dci": list(-a + rng.normal(size=12))}
    table["dci"][3] = None  # a run without dci: that pair is over the other 11
    keys, rho, n = stats.spearman_matrix(table)
    assert keys == ["mig", "sap", "dci"] and n[0, 1] == 12 and n[0, 2] == 11
    assert rho[0, 1] == pytest.approx(sps.spearmanr(table["mig"], table["sap"]).statistic)
    keep = [i for i in range(12) if i != 3]
    assert rho[0, 2] == pytest.approx(sps.spearmanr(a[keep], [table["dci"][i] for i in keep]).statistic)
    assert rho[2, 0] == rho[0, 2] and rho[1, 1] == pytest.approx(1.0)


def test_udr_selection_percentile_and_correlation():
    crit, scores = [0.1, 0.9, 0.5, 0.3], [0.2, 0.6, 0.9, 0.1]
    up = stats.selection("udr_lasso", "mig", "↑", crit, scores)
    assert up.picked == 1 and up.percentile == 75.0  # 0.6 is at least as good as 0.2, 0.6 and 0.1
    assert up.rho == pytest.approx(sps.spearmanr(crit, scores).statistic) and up.n == 4
    down = stats.selection("udr_lasso", "gaussian_total_correlation", "↓", crit, scores)
    assert down.percentile == 50.0  # lower is better: 0.6 is at least as good as 0.6 and 0.9
    assert "75th percentile of mig among the 4 runs" in up.sentence
    flat = stats.selection("udr_spearman", "mig", "↑", [0.5] * 4, scores)
    assert flat.picked is None and "the same for all 4 runs" in flat.sentence  # a constant criterion picks none


# --- the page, on hand-made run directories ---------------------------------------------------------------------

MODELS = {"vae": "VAE", "beta_tcvae": "BetaTCVAE", "beta_vae": "BetaVAE"}


def _run(d, model, seed, metrics, **knobs):
    (d / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "steps": 10, "model": {"_target_": f"dislab.models.{model}.{MODELS[model]}"},
           "net": {"_target_": "dislab.nets.mlp.MLP"}, "dataset": {"_target_": "dislab.data.toy.Toy"}, **knobs}
    OmegaConf.save(OmegaConf.create(cfg), d / ".hydra" / "config.yaml")
    typed = [f"{k}={v}" for k, v in knobs.items()]
    OmegaConf.save(OmegaConf.create([f"model={model}", *typed, f"seed={seed}"]), d / ".hydra" / "overrides.yaml")
    (d / "metrics.json").write_text(json.dumps({"metrics": metrics, "global_step": 10, "untrained": {}}))
    return d


def _study(root):
    """vae and beta_tcvae over 5 seeds (beta_tcvae's MIG higher by 0.1 + 0.01 (seed % 2) on each), beta_vae at
    beta 1 and 4 over 2 seeds; sap unrelated; UDR as the sweep writes it, following MIG."""
    job, udr = 0, {}
    for model, seeds, knobs in (("vae", 5, [{}]), ("beta_tcvae", 5, [{}]), ("beta_vae", 2, [{"beta": 1}, {"beta": 4}])):
        for k in knobs:
            for s in range(seeds):
                mig = 0.1 + 0.01 * s + (0.1 + 0.01 * (s % 2) if model == "beta_tcvae" else 0.0) \
                    + 0.05 * k.get("beta", 0)
                _run(root / str(job), model, s, {"mig": mig, "sap": 0.3 + 0.07 * ((job * 7) % 5)}, **k)
                udr[str(job)] = {"udr_lasso": mig / 2, "udr_spearman": 0.5}
                job += 1
    (root / "udr.json").write_text(json.dumps({"runs": udr}))
    return root


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_page_compares_against_the_vae_and_says_when_seeds_are_too_few(tmp_path):
    page = build([_study(tmp_path / "s")], tmp_path / "out")
    text = page.read_text()
    rows = {(r["metric"], r["compared"]): r for r in _csv(tmp_path / "out" / "comparisons.csv")}
    tc = rows[("mig", "beta_tcvae")]
    assert tc["baseline"] == "vae" and tc["seeds"] == "5" and float(tc["difference"]) == pytest.approx(0.104)
    assert tc["winner"] == "beta_tcvae" and float(tc["low"]) > 0
    assert float(tc["p"]) == pytest.approx(2 / 32)
    bv = rows[("mig", "beta_vae (beta=4)")]
    assert bv["seeds"] == "2" and bv["winner"] == "" and "2 paired seeds are too few to decide" in bv["sentence"]
    assert "beta_tcvae is better" in text and "id='comparisons-10'" in text and "id='analyses-10'" in text
    ranks = {(r["metric"], r["model"]): float(r["rank"]) for r in _csv(tmp_path / "out" / "ranks.csv")}
    assert ranks[("mig", "beta_vae")] == 1 and ranks[("mig", "beta_tcvae")] == 2 and ranks[("mig", "vae")] == 3
    shares = {r["metric"]: r for r in _csv(tmp_path / "out" / "variance.csv")}
    assert sum(float(shares["mig"][k]) for k in ("method", "setting", "seed")) == pytest.approx(1)
    rho = {(r["a"], r["b"]): float(r["rho"]) for r in _csv(tmp_path / "out" / "spearman.csv")}
    assert rho[("mig", "udr_lasso")] == pytest.approx(1.0)  # UDR follows MIG here
    picked = {(r["criterion"], r["metric"]): r for r in _csv(tmp_path / "out" / "selection.csv")}
    assert float(picked[("udr_lasso", "mig")]["percentile"]) == 100.0
    assert "#run-" in text and "id='run-" in text  # the picked run links to its row among every run

    other = build([tmp_path / "s"], tmp_path / "out2", baseline="beta_vae").read_text()
    assert "against the baseline <b>beta_vae (beta=1)</b>" in other  # a model: its smallest setting
    assert "against the baseline <b>beta_vae (beta=4)</b>" in \
        build([tmp_path / "s"], tmp_path / "out3", baseline="beta_vae:beta=4").read_text()


def test_a_baseline_that_names_nothing_is_one_line_and_nothing_written(tmp_path, capsys):
    study = _study(tmp_path / "s")
    assert main([str(study), "--baseline", "dip_vae_i", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --baseline 'dip_vae_i' names no model or setting of these runs; choose one of: "
                          "beta_tcvae, beta_vae, vae, beta_vae:beta=1") and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


def test_bounded_metrics_span_their_whole_range_in_every_figure(tmp_path, monkeypatch):
    from dislab.report import plots, study

    assert study.bounds("mig") == (0.0, 1.0) and study.bounds("udr_lasso") == (0.0, 1.0)
    assert study.bounds("gaussian_total_correlation") is None
    seen = []
    real = plots._png

    def spy(fig, bottom=0.0, title=None):
        seen.append((title, [ax.get_ylim() for ax in fig.axes if ax.get_visible() and ax.get_title()]))
        return real(fig, bottom, title)

    monkeypatch.setattr(plots, "_png", spy)
    build([_study(tmp_path / "s")], tmp_path / "out")
    limits = {lim for _, lims in seen for lim in lims}
    assert seen and all(title for title, _ in seen)  # every figure has a title of its own
    dist = next(lims for title, lims in seen if title.startswith("Each model over all its runs"))
    assert all(lo < 0 < 1 < hi < 1.1 for lo, hi in dist)  # [0, 1] with a small margin, in every panel
    assert limits


def test_lin2020_holds_table_1s_dsprites_rows_with_what_each_value_is(tmp_path):
    from dislab.report.references import load

    ref = load("lin2020")
    lin = {(p.row, p.metric): (p.value, p.std) for p in ref.VALUES if "Lin et al. 2020" in p.source}
    assert lin[("VAE", "factor_vae_score")] == (0.63, 0.06) and lin[("β-TCVAE", "mig")] == (0.45, None)
    assert lin[("β-VAE", "sap")] == (0.55, None) and lin[("DIP-VAE", "sap")] == (0.53, None)
    assert lin[("FactorVAE", "factor_vae_score")] == (0.82, None)
    assert lin[("FactorVAE (10.0)", "beta_vae_score")] == (0.83, 0.01)
    assert lin[("FactorVAE (40.0)", "dci_disentanglement")] == (0.74, 0.01)
    assert len(lin) == 36  # every value of the rows of dislab's models (VAE ... InfoGAN)
    for p in ref.VALUES:
        assert p.kind and p.definition and p.budget and p.row and p.source
    assert {p.kind for p in ref.VALUES} == {"best reported", "mean ± std over Lin et al.'s runs", "approximate"}

    for s in range(2):  # only the vae ran: the reference names no other model
        _run(tmp_path / "s" / f"d{s}", "vae", s, {"sap": 0.4, "mig": 0.1})
    text = build([tmp_path / "s"], tmp_path / "out", reference="lin2020").read_text()
    rows = _csv(tmp_path / "out" / "reference.csv")
    assert {r["model"] for r in rows} == {"vae"} and {r["metric"] for r in rows} == {"mig", "sap"}
    assert "0.10 (best reported) [1]" in text and "row: VAE; metric: as the paper" in text


def _screenshot(page, png, height):
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI: `make test` installs it (scripts/install_chromium)")
        pytest.skip("chromium is not installed (scripts/install_chromium installs it)")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size=1400,{height}", f"--screenshot={png}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)


COLOURS = {"budget-10": (255, 0, 0), "comparisons-10": (0, 200, 0), "analyses-10": (0, 0, 255)}
FIGURE = (255, 0, 255)


def test_the_report_in_a_browser_shows_its_sections_and_figures(tmp_path):
    """Headless Chromium renders the page; each section heading gets its own colour (a style added to a copy of
    the page) and each figure an outline, and the screenshot must show every heading, in order, and figures
    drawn at their size (a picture that did not load is a small broken-image box)."""
    from PIL import Image

    page = build([_study(tmp_path / "s")], tmp_path / "out")
    style = "".join(f"#{k}{{background:rgb{c};color:rgb{c}}}" for k, c in COLOURS.items())
    style += f"img.fig{{outline:6px solid rgb{FIGURE};outline-offset:4px}}"
    shown = page.with_name("shown.html")
    shown.write_text(page.read_text().replace("</style>", style + "</style>", 1))
    _screenshot(shown, tmp_path / "shot.png", 9000)
    with Image.open(tmp_path / "shot.png") as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    tops = {}
    for key, colour in COLOURS.items():
        rows, cols = np.nonzero((px == colour).all(axis=2))
        assert len(rows) > 20_000, f"the heading {key} is not on the screenshot"  # a whole-width heading bar
        assert cols.max() - cols.min() > 1000
        tops[key] = rows.min()
    assert tops["budget-10"] < tops["comparisons-10"] < tops["analyses-10"]
    rows, _ = np.nonzero((px == FIGURE).all(axis=2))
    assert len(rows) and rows.max() - rows.min() > 600  # outlined figures, drawn at their size, below the analyses
    assert rows.min() > tops["analyses-10"]
    blank = px[tops["budget-10"]:tops["comparisons-10"]]
    assert (blank < 100).all(axis=2).sum() > 2000  # the table under the first heading is drawn (dark text)


def test_the_sweeps_summary_run_holds_the_reports_tables(tmp_path):
    from dislab.sweep.summary import log_to_wandb, summarize
    from dislab.trackers.wandb import read_run

    sweep = _study(tmp_path / "s")
    summary = summarize(sweep)
    build([sweep], sweep / "report")
    where = log_to_wandb(summary, sweep, project="dislab-test")
    rec = read_run(next(where.glob("run-*.wandb")))
    assert rec.complete
    for name in ("comparisons", "ranks", "variance", "spearman"):
        assert rec.summary[f"report/{name}/_type"] == "table-file", name
    table = json.loads((where / "files" / rec.summary["report/comparisons/path"]).read_text())
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
    tc = next(r for r in rows if r["metric"] == "mig" and r["compared"] == "beta_tcvae")
    assert tc["winner"] == "beta_tcvae" and tc["seeds"] == 5 and tc["difference"] == pytest.approx(0.104)


def test_each_runs_tracker_summary_holds_its_untrained_scores(run_fast):
    from dislab.trackers.wandb import read_run

    metrics, run_dir = run_fast("model=beta_vae", "logger=wandb")
    saved = json.loads((run_dir / "metrics.json").read_text())
    rec = read_run(next((run_dir / "wandb").glob("offline-run-*/run-*.wandb")))
    assert saved["untrained"] and rec.summary["metrics/mig"] == metrics["mig"]
    assert {k: v for k, v in rec.summary.items() if k.startswith("untrained/")} == \
        {f"untrained/{k}": v for k, v in saved["untrained"].items()}


def test_an_unbounded_metric_has_one_axis_in_every_figure_of_a_budget(tmp_path, monkeypatch):
    from dislab.report import plots

    root = tmp_path / "s"
    for job, (model, beta, tc) in enumerate([("vae", None, 5.0), ("vae", None, 6.0), ("beta_vae", 1, 1.0),
                                             ("beta_vae", 1, 1.5), ("beta_vae", 4, 0.2), ("beta_vae", 4, 0.4)]):
        knobs = {} if beta is None else {"beta": beta}
        _run(root / str(job), model, job % 2, {"gaussian_total_correlation": tc}, **knobs)
    seen = []
    real = plots._png

    def spy(fig, bottom=0.0, title=None):
        seen.extend((title, ax.get_title(), ax.get_ylim()) for ax in fig.axes if ax.get_visible() and ax.get_title())
        return real(fig, bottom, title)

    monkeypatch.setattr(plots, "_png", spy)
    build([root], tmp_path / "out")
    lims = {lim for _, name, lim in seen if name.startswith("gaussian_total_correlation")}
    assert len(seen) >= 2 and len(lims) == 1  # the pooled figure and beta_vae against beta: one range, 0.2 to 6
    (lo, hi), = lims
    assert lo < 0.2 and 6.0 < hi < 6.5
