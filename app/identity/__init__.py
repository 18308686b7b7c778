"""Who said it: one customer's accounts across channels, linked by handle, email or account id."""
