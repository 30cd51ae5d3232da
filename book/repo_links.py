"""Sphinx extension: the book's repository URL comes from one setting, ``VAE_BOOK_REPO_URL``.

Jupyter Book 1 reads ``_config.yml`` as it is, so the address of the book's repository cannot be
written there once and switched off where it is not known. Instead ``_config.yml`` names no
repository, and this extension reads the environment variable ``VAE_BOOK_REPO_URL`` (and optionally
``VAE_BOOK_REPO_BRANCH``, default ``main``) when the book is built:

* set: the repository button, the launch buttons (Binder always, Colab for GitHub repositories)
  and the install instructions on the pages point to it;
* unset or empty: all of them are left out; no page points to a placeholder.

The pages use the MyST substitutions ``{{ launch_sentence }}``, ``{{ colab_install }}`` and
``{{ intro_colab }}`` (see ``substitutions``), which exist in both cases.

    VAE_BOOK_REPO_URL=https://github.com/<owner>/<repo> make book
"""
from __future__ import annotations

import os
import re

ENV_URL = "VAE_BOOK_REPO_URL"
ENV_BRANCH = "VAE_BOOK_REPO_BRANCH"
BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"
_URL = re.compile(r"^https://(?P<host>[A-Za-z0-9.-]+\.[A-Za-z]{2,})/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)$")


def read_repository(environ=None) -> tuple[str | None, str]:
    """``(url, branch)`` from the environment; ``url`` is ``None`` when the variable is unset or empty.

    Raises ValueError for an address that is not ``https://<host>/<owner>/<repo>``.
    """
    environ = os.environ if environ is None else environ
    url = (environ.get(ENV_URL) or "").strip()
    branch = (environ.get(ENV_BRANCH) or "").strip() or "main"
    if not url:
        return None, branch
    url = url.rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    if not _URL.match(url):
        raise ValueError(f"{ENV_URL} must be the https address of the book's repository, "
                         f"https://<host>/<owner>/<repo> (e.g. https://github.com/<owner>/<repo>); "
                         f"got {environ.get(ENV_URL)!r}. Unset it to build without repository links.")
    return url, branch


def theme_options(url: str | None, branch: str = "main") -> dict:
    """The sphinx-book-theme options for the repository and launch buttons (none without a URL)."""
    if url is None:
        return {"repository_url": "", "use_repository_button": False, "use_issues_button": False,
                "use_edit_page_button": False, "launch_buttons": {}}
    on_github = _URL.match(url).group("host").lower() == "github.com"
    return {"repository_url": url, "repository_branch": branch, "path_to_docs": "",
            "use_repository_button": True, "use_issues_button": False, "use_edit_page_button": False,
            "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": BINDER,
                               "colab_url": COLAB if on_github else "", "thebe": False}}


def substitutions(url: str | None, branch: str = "main") -> dict:
    """The MyST substitutions the pages use for launch and install instructions."""
    if url is None:
        return {
            "launch_sentence": "",
            "colab_install": (
                "Each chapter's notebook also runs in any other Jupyter environment, Google Colab "
                "included: download it with the download icon at the top of its page. Its first code "
                "cell checks that the book's library `vae_core` can be imported and, when it cannot, "
                "says how to install it."),
            "intro_colab": (
                "**Anywhere else.** Download a chapter's notebook with the download icon at the top "
                "of its page and open it in Jupyter or Google Colab; its first code cell checks that "
                "the book's library is installed and says how to install it if not."),
        }
    ref = "" if branch == "main" else f"@{branch}"
    colab = _URL.match(url).group("host").lower() == "github.com"
    where = "**Colab** or **Binder**" if colab else "**Binder**"
    return {
        "launch_sentence": f"The rocket icon opens it in {where}, from the book's repository ({url}).",
        "colab_install": (
            f"The rocket icon at the top of a chapter opens its notebook in {where}. Binder builds an "
            "environment with everything installed, the book's library included. "
            + ("In Colab, which already has PyTorch, the chapter's first code cell checks for the "
               "book's library and says what to run when it is missing: this line, in a cell of "
               "its own,\n\n"
               f"```python\n%pip install \"git+{url}{ref}\"\n```\n\n"
               "installs it (Colab may ask you to restart the session once)."
               if colab else "")),
        "intro_colab": (
            f"**In {'Colab or ' if colab else ''}Binder.** The rocket icon at the top of a chapter "
            "opens it there, nothing to install on your machine."),
    }


def _apply(app, config) -> None:
    url, branch = read_repository()
    options = dict(config.html_theme_options or {})
    options.update(theme_options(url, branch))
    config.html_theme_options = options
    subs = dict(config.myst_substitutions or {})
    subs.update(substitutions(url, branch))
    config.myst_substitutions = subs


def setup(app):
    # after Jupyter Book has turned _config.yml into Sphinx settings, before the theme reads them
    app.connect("config-inited", _apply, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
