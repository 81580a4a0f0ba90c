"""Solvers built in the test process."""


def train_steps(solver, batch, steps):
    """``steps`` training steps of ``solver`` on ``batch``, inside its train stage; their metrics."""
    results = []

    def run():
        for idx in range(steps):
            results.append(solver.run_step(idx, batch, {}))

    solver.run_stage("train", run)
    return results
