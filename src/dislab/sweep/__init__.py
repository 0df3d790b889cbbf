"""Sweeps: reading run directories (``runs``), the end-of-sweep summary with UDR (``summary``), the
Hydra callbacks registered in ``conf/train.yaml`` (``callback``) and ``conf/launcher/gpus.yaml``
(``gpus``). ``dislab.report`` turns run and sweep directories into an HTML report."""
