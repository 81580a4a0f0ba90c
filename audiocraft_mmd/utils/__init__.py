"""What the commands, the solvers and the study share: paths, progress, XPs and checkpoints."""
