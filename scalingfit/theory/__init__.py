"""Theory the fits are checked against: the teacher–student perceptron's N → ∞ curves
(:mod:`scalingfit.theory.perceptron`). Pure numerical functions, no I/O."""
