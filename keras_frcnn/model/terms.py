"""The names of what a training step reports, shared by the model and the training history.

:meth:`keras_frcnn.model.faster_rcnn.FasterRCNN.train_step_fn` returns these terms; the training
loops log them and ``history.csv`` has a column for each. No TensorFlow import, so the command
lines can read them before TensorFlow starts.
"""

LOSS_TERMS = ("loss", "rpn_cls", "rpn_reg", "head_cls", "head_reg")
"""The total loss (the paper's Eq. 1 for both stages) and its four terms."""

SKIPPED_STEPS = "skipped_steps"
"""Steps whose gradients were not finite and were not applied (mixed bfloat16 only)."""
