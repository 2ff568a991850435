"""Selection and the final model: top-k retraining, the final full-table model, scoring a
trained model on any split, reports, and the one-command pipeline over every stage."""
