"""The app's UI layer, between the pages and builder: pages -> ui -> builder -> torch, one way.

Where things live (pages themselves stay thin: a `main()` that lays out components, ~200 lines at most):
- `ui.state`      every st.session_state key, declared once with its type (`state.TRAIN_RUN.get()`).
- `ui.session`    the session's design, its network (built on demand, moved to the chosen device), sidebar.
- `ui.messages`   `show_error(e)` for builder's errors; `flash(text)` for a message that survives a rerun,
                  shown where the page calls `show_flashes()`.
- `ui.last_built` the banner a page shows when the Design page's draft does not build.
- `ui.navigation` the pages by key (file, title, icon); app.py builds st.navigation from it.
- components, one module per part of a page (functions that draw; no logic a test could not reach through
  builder): Design `design_draft` (undo history, edit callbacks), `layer_row`, `arg_form`, `design_panels`;
  Train `train_form`, `train_view`; Parameters `init_form`; Gradients `gradient_view`; Lessons
  `lesson_steps`; Library `library_tabs`; any page `downloads`.
- Figures (plotly) are pure functions in `builder.figures`; logic without Streamlit belongs in builder
  (e.g. `builder.train_advice`: which data fits, good settings, run tables).

Adding to a page: a new widget whose value is read back gets a Key in `ui.state`; a message after a
callback is `ui.flash(...)`; a new figure is a function in `builder.figures` with a test in
tests/test_figures.py; a page grows past ~200 lines by moving a part into a component here
(tests/test_layering.py holds the budget and the import rules).

The names most pages need are here: `ui.design()`, `ui.set_design()`, `ui.net()`, `ui.dry_run()`,
`ui.show_error()`, `ui.flash()`, `ui.show_flashes()`, `ui.show_last_built()` (under every page's title but
Design's: says when the page shows the last design that built, not the draft). No module here imports torch at
run time.
"""

from ui.last_built import banner as show_last_built
from ui.messages import flash, show_error, show_flashes
from ui.session import (
    design,
    dry_run,
    dry_run_or_error,
    init_session,
    net,
    net_device,
    open_share_link,
    set_design,
    sidebar,
)

__all__ = [
    "design",
    "dry_run",
    "dry_run_or_error",
    "flash",
    "init_session",
    "net",
    "net_device",
    "open_share_link",
    "set_design",
    "show_error",
    "show_flashes",
    "show_last_built",
    "sidebar",
]
