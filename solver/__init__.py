"""chainrule training: update rules, schedules, nets and the Solver (being built; see issue 3)."""
