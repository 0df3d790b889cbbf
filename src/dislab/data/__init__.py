"""Ground-truth data sets (one per file) and the DataModule that serves any of them."""
