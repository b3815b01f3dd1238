"""chainrule datasets: loaders and the small real dataset shipped with the project (see issue 3)."""
