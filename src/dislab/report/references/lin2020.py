"""dSprites: Lin et al. 2020, "InfoGAN-CR and ModelCentrality: Self-supervised Model Training and Selection for
Disentangling GANs" (ICML 2020), Table 1, every row of a model dislab trains, and Chen et al. 2018.

Table 1 ("Comparisons of the popular disentanglement metrics on the dSprites dataset", the image
``results/Table1.png`` in github.com/fjxmlzn/InfoGAN-CR) has two kinds of rows:

- baselines (VAE, β-TCVAE, HFVAE, β-VAE, CHyVAE, DIP-VAE, FactorVAE, InfoGAN, IB-GAN): "the best reported
  result for each baseline", i.e. numbers Lin et al. took from other papers, each the best one paper
  reported, with the ± where that paper printed one. Their metric implementations and training budgets
  are those papers', which Table 1 does not state.
- FactorVAE (γ = 1, 10, 20, 40), InfoGAN (modified) and InfoGAN-CR: Lin et al.'s own runs, mean ± std over
  runs, scored with their metric code (``metric.py`` of that repository). Their FactorVAE configuration
  (``FactorVAE_dSprites/config.py``) trains 10 runs per γ for 27 epochs at batch 64, z_dim 10: 27 x 737,280
  / 64 = 311,040 iterations. Rows of models dislab does not train (HFVAE, CHyVAE, IB-GAN, InfoGAN-CR, InfoGAN
  (modified)) are left out.

Table 1's DIP-VAE row does not say which DIP-VAE (I or II): it stands for both of dislab's. Its "DCI" is DCI
disentanglement; "FactorVAE" and "BetaVAE" are those metrics' scores.

Chen et al. 2018 ("Isolating Sources of Disentanglement in VAEs", NeurIPS 2018): their dSprites MIGs are
shown in figures (MIG against β); no number printed in the paper is held here. The one value held is from running
their code (github.com/rtqichen/beta-tcvae, ``disentanglement_metrics.py``: MIG about 0.50 for β-TCVAE on
dSprites, their continuous MIG estimator, dislab's ``mig_chen``), approximate, as recorded in dislab's issue 13;
their code trains an MLP for dSprites.
"""

from dislab.report.references import Published

TITLE = "dSprites: Lin et al. 2020, Table 1 (best reported baselines and their own FactorVAE runs), Chen et al. 2018"
DATASET = "dsprites"
STEPS = 300_000  # the unsupervised study's budget; each value states its own below
SETTING = ("Published values on dsprites, each with its own budget: the baselines' budgets are those of the papers "
           "Lin et al. took them from (not stated in their Table 1); Lin et al.'s FactorVAE runs trained 311,040 "
           "iterations. Our runs are compared at the study's 300,000 steps.")
METRICS = ("factor_vae_score", "dci_disentanglement", "sap", "mig", "beta_vae_score", "mig_chen")

_LIN = "Lin et al. 2020, InfoGAN-CR and ModelCentrality (ICML 2020), Table 1, dSprites"
_BEST = "best reported"
_OWN = "mean ± std over Lin et al.'s runs"
_LIN_BUDGET_BASE = "that of the paper the value comes from (not stated in Table 1)"
_LIN_BUDGET_OWN = "27 epochs at batch 64 = 311,040 iterations, 10 runs per γ (their FactorVAE_dSprites/config.py)"
_DEF_BASE = "as the paper the value comes from defines and implements it (not stated in Table 1)"
_DEF_OWN = "Lin et al.'s implementation (metric.py of github.com/fjxmlzn/InfoGAN-CR)"
_KEYS = {"FactorVAE": "factor_vae_score", "DCI": "dci_disentanglement", "SAP": "sap", "MIG": "mig",
         "BetaVAE": "beta_vae_score"}


def _rows():
    """Table 1's rows as printed: (row, dislab model, also, setting, own runs?, {column: (value, std)})."""
    return [
        ("VAE", "vae", (), "", False, {"FactorVAE": (0.63, 0.06), "DCI": (0.30, 0.10), "MIG": (0.10, None)}),
        ("β-TCVAE", "beta_tcvae", (), "", False, {"FactorVAE": (0.62, 0.07), "DCI": (0.29, 0.10),
                                                  "MIG": (0.45, None)}),
        ("β-VAE", "beta_vae", (), "", False, {"FactorVAE": (0.63, 0.10), "DCI": (0.41, 0.11), "SAP": (0.55, None),
                                              "MIG": (0.21, None)}),
        ("DIP-VAE", "dip_vae_i", ("dip_vae_ii",), "", False, {"SAP": (0.53, None)}),
        ("FactorVAE", "factor_vae", (), "", False, {"FactorVAE": (0.82, None), "MIG": (0.15, None)}),
        ("FactorVAE (1.0)", "factor_vae", (), "gamma=1", True, {
            "FactorVAE": (0.79, 0.01), "DCI": (0.67, 0.03), "SAP": (0.47, 0.03), "MIG": (0.27, 0.03),
            "BetaVAE": (0.79, 0.02)}),
        ("FactorVAE (10.0)", "factor_vae", (), "gamma=10", True, {
            "FactorVAE": (0.83, 0.01), "DCI": (0.70, 0.02), "SAP": (0.57, 0.00), "MIG": (0.40, 0.01),
            "BetaVAE": (0.83, 0.01)}),
        ("FactorVAE (20.0)", "factor_vae", (), "gamma=20", True, {
            "FactorVAE": (0.83, 0.01), "DCI": (0.72, 0.02), "SAP": (0.57, 0.00), "MIG": (0.40, 0.01),
            "BetaVAE": (0.85, 0.00)}),
        ("FactorVAE (40.0)", "factor_vae", (), "gamma=40", True, {
            "FactorVAE": (0.82, 0.01), "DCI": (0.74, 0.01), "SAP": (0.56, 0.00), "MIG": (0.43, 0.01),
            "BetaVAE": (0.84, 0.01)}),
        ("InfoGAN", "infogan", (), "", False, {"FactorVAE": (0.59, 0.70), "DCI": (0.41, 0.05), "MIG": (0.05, None)}),
    ]


VALUES = [
    Published(model, _KEYS[col], value, _OWN if own else _BEST, _LIN,
              "Lin et al. 2020, Table 1" + (" (their runs)" if own else " (best reported)"), std=std, row=row,
              setting=setting, definition=_DEF_OWN if own else _DEF_BASE,
              budget=_LIN_BUDGET_OWN if own else _LIN_BUDGET_BASE, also=also)
    for row, model, also, setting, own, cols in _rows() for col, (value, std) in cols.items()
] + [
    Published("beta_tcvae", "mig_chen", 0.50, "approximate",
              "Chen et al. 2018's code (github.com/rtqichen/beta-tcvae, disentanglement_metrics.py), as recorded in "
              "dislab issue 13", "Chen et al. 2018 code, mig_chen (≈)", row="β-TCVAE, dSprites",
              definition="Chen et al.'s continuous (density-based) MIG estimator (dislab: mig_chen)",
              budget="their code's default for dSprites (an MLP, not conv64); not stated with the value"),
]
