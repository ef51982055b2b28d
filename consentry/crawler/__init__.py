"""crawler stage."""
