"""Pure loss-term functions shared by the models."""
