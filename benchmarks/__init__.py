"""Performance comparisons of chainrule against PyTorch CPU (when torch is installed).

Scripts here measure; they never fail on a slow figure. Run one with ``python -m benchmarks.<name>``.
"""
