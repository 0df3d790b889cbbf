"""The report's statistics (dislab.report.stats) against scipy and numbers worked by hand, and the page's
comparisons and analyses on hand-made run directories with known scores."""

from __future__ import annotations

import csv
import json
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
    else:
        assert "is better" not in c.sentence and "no better side" in c.sentence

    four = stats.compare("mig", "beta_tcvae", "vae", direction, base, {s: better[s] for s in range(4)})
    assert four.n == 4 and four.low > 0 and four.winner is None  # the interval excludes 0, but 4 seeds
    assert "4 paired seeds are too few to decide (at least 5 are needed)" in four.sentence

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
