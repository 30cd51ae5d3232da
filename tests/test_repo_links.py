"""The repository URL setting (book/repo_links.py): one environment variable, read at build time,
gives the repository button, the launch buttons and the install line; without it there are none."""
import importlib.util
from types import SimpleNamespace

import pytest

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("repo_links", ROOT / "book" / "repo_links.py")
repo_links = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repo_links)


def test_unset_or_empty_means_no_links_at_all():
    for env in ({}, {"VAE_BOOK_REPO_URL": ""}, {"VAE_BOOK_REPO_URL": "   "}):
        url, branch = repo_links.read_repository(env)
        assert url is None and branch == "main"
        opts = repo_links.theme_options(url, branch)
        assert opts["repository_url"] == "" and opts["use_repository_button"] is False
        assert opts["launch_buttons"] == {}
        subs = repo_links.substitutions(url, branch)
        text = " ".join(subs.values())
        assert subs["launch_sentence"] == "" and "http" not in text and "pip install" not in text


def test_a_github_url_gives_binder_colab_and_the_install_line():
    env = {"VAE_BOOK_REPO_URL": "https://github.com/someone/vae-notes.git/", "VAE_BOOK_REPO_BRANCH": "book"}
    url, branch = repo_links.read_repository(env)
    assert (url, branch) == ("https://github.com/someone/vae-notes", "book")
    opts = repo_links.theme_options(url, branch)
    assert opts["repository_url"] == url and opts["repository_branch"] == "book"
    assert opts["use_repository_button"] is True
    assert opts["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert opts["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    subs = repo_links.substitutions(url, branch)
    assert '%pip install "git+https://github.com/someone/vae-notes@book"' in subs["colab_install"]
    assert "Colab" in subs["launch_sentence"] and url in subs["launch_sentence"]


def test_other_hosts_get_binder_but_no_colab():
    url, branch = repo_links.read_repository({"VAE_BOOK_REPO_URL": "https://gitlab.com/a/b"})
    opts = repo_links.theme_options(url, branch)
    assert opts["launch_buttons"]["binderhub_url"] and opts["launch_buttons"]["colab_url"] == ""
    assert "Colab" not in repo_links.substitutions(url, branch)["launch_sentence"]


@pytest.mark.parametrize("bad", ["github.com/a/b", "http://github.com/a/b", "https://github.com/a",
                                 "https://github.com/a/b/c", "https://github.com/<owner>/<repo>"])
def test_a_malformed_url_is_refused_with_the_expected_form(bad):
    with pytest.raises(ValueError, match=r"https://<host>/<owner>/<repo>"):
        repo_links.read_repository({"VAE_BOOK_REPO_URL": bad})


def test_config_inited_hook_overrides_what_jupyter_book_set(monkeypatch):
    config = SimpleNamespace(html_theme_options={"repository_url": "https://github.com/executablebooks/jupyter-book",
                                                 "launch_buttons": {"binderhub_url": "https://mybinder.org"},
                                                 "home_page_in_toc": True},
                             myst_substitutions={"other": "kept"})
    monkeypatch.delenv("VAE_BOOK_REPO_URL", raising=False)
    repo_links._apply(None, config)
    assert config.html_theme_options["repository_url"] == "" and config.html_theme_options["launch_buttons"] == {}
    assert config.html_theme_options["home_page_in_toc"] is True
    assert config.myst_substitutions["other"] == "kept" and "colab_install" in config.myst_substitutions
    monkeypatch.setenv("VAE_BOOK_REPO_URL", "https://github.com/o/r")
    repo_links._apply(None, config)
    assert config.html_theme_options["repository_url"] == "https://github.com/o/r"


def test_config_names_no_repository_and_loads_the_extension():
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert "github.com" not in text
    assert "repo_links" in text


def _requirement_names(path):
    names = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name = line.replace(">", "=").replace("<", "=").split("=")[0].strip().lower()
            names[name] = line
    return names


def test_binder_installs_the_package_with_the_runtime_dependencies():
    """Binder's launch works only if binder/ installs what `import vae_core` needs: the runtime
    dependencies of pyproject.toml, torch pinned as in requirements.txt, and the package itself."""
    tomllib = pytest.importorskip("tomllib")   # Python >= 3.11
    binder = _requirement_names(ROOT / "binder" / "requirements.txt")
    top = _requirement_names(ROOT / "requirements.txt")
    assert binder["torch"] == top["torch"]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name = dep.replace(">", "=").replace("<", "=").split("=")[0].strip().lower()
        assert name in binder, f"binder/requirements.txt lacks {dep}"
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post and "-e ." in post
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
