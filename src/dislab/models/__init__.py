"""Methods: ``vae.VAE`` is the base LightningModule; one file per method overrides ``regularizer``."""
