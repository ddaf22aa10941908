"""Watch your own training loop in SSL Studio: ``engine.track`` writes the run directory the
engine's own runs write, so the app shows your run live (curves, collapse diagnostics and
alarm, map, retrieval, Compare). Needs torch and numpy only, never Streamlit.

    from engine import track

    with track.start("my-byol", config={"lr": 3e-4}, runs_dir="runs") as run:
        for step in range(steps):
            ...
            run.log(step, loss=loss)
            if step % 100 == 0:
                run.views(step, z0, z1)
                run.embeddings(step, h=h, z=z, labels=y, images=thumbs)

See :mod:`engine.track.run` for every call and argument.
"""

from engine.track.run import Run, start

__all__ = ["Run", "start"]
