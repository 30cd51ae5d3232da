"""M2 without z (chapter 10): exact bounds, the Bayes rate in closed form, and the semi-supervised effect."""
import math

import pytest
import torch

from vae_core import semisupervised as ss

pytestmark = pytest.mark.usefixtures("one_thread")

C, D, SEP = 5, 50, 2.6


def _problem(seed=0, n=3000, per_class=2):
    means = ss.simplex_means(C, D, SEP)
    g = torch.Generator().manual_seed(seed)
    x, y = ss.sample_classes(means, n, g)
    lab, unl = ss.split_labels(y, per_class, g)
    x_test, y_test = ss.sample_classes(means, 20_000, g)
    return means, x[lab], y[lab], x[unl], x_test, y_test


def test_bayes_accuracy_two_classes_is_the_closed_form():
    for s in (0.5, 1.0, 2.6, 4.0):
        exact = 0.5 * (1 + math.erf(s / math.sqrt(2) / math.sqrt(2)))        # Phi(s / sqrt 2)
        assert abs(ss.bayes_accuracy(2, s) - exact) < 1e-12


def test_bayes_accuracy_matches_the_bayes_rule_by_monte_carlo():
    means = ss.simplex_means(C, D, SEP)
    x, y = ss.sample_classes(means, 200_000, torch.Generator().manual_seed(1))
    correct = (ss.log_joint(x, means).argmax(-1) == y).double()
    exact = ss.bayes_accuracy(C, SEP)
    se = correct.std().item() / math.sqrt(len(correct))
    assert abs(correct.mean().item() - exact) < 4 * se
    # more classes at the same separation are harder; more separation is easier
    assert ss.bayes_accuracy(10, SEP) < exact < ss.bayes_accuracy(C, SEP + 0.5)


def test_labelled_bound_is_the_log_joint_and_the_evidence_sums_it():
    means = ss.simplex_means(3, 4, 1.5) + 0.1 * torch.randn(3, 4, dtype=torch.float64,
                                                            generator=torch.Generator().manual_seed(2))
    x = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    normal = torch.distributions.MultivariateNormal(means[y], torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(ss.labelled_bound(x, y, means), normal.log_prob(x) - math.log(3))
    joint = torch.stack([ss.labelled_bound(x, torch.full((7,), c), means) for c in range(3)], -1)
    torch.testing.assert_close(ss.log_evidence(x, means), torch.logsumexp(joint, -1))


def test_unlabelled_bound_is_the_evidence_minus_the_kl_to_the_posterior():
    means = ss.simplex_means(4, 6, 1.0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(50, 6, dtype=torch.float64, generator=g)
    logits = torch.randn(50, 4, dtype=torch.float64, generator=g)
    q = torch.softmax(logits, -1)
    post = torch.softmax(ss.log_joint(x, means), -1)
    kl = (q * (q.log() - post.log())).sum(-1)
    U = ss.unlabelled_bound(x, logits, means)
    torch.testing.assert_close(U, ss.log_evidence(x, means) - kl)
    assert (U <= ss.log_evidence(x, means) + 1e-12).all()
    # sum_y q L(x, y) + H(q), as chapter 10 writes it
    L = torch.stack([ss.labelled_bound(x, torch.full((50,), c), means) for c in range(4)], -1)
    torch.testing.assert_close(U, (q * L).sum(-1) - (q * q.log()).sum(-1))
    # tight exactly at the posterior (the logits may be shifted by a constant per row)
    torch.testing.assert_close(ss.unlabelled_bound(x, ss.log_joint(x, means) + 3.0, means), ss.log_evidence(x, means))


def test_semi_supervised_em_never_decreases_its_objective():
    means, x_lab, y_lab, x_unl, _, _ = _problem()
    _, history = ss.semi_supervised_em(x_lab, y_lab, x_unl, n_iter=30)
    steps = torch.tensor(history).diff()
    assert (steps >= -1e-10).all(), steps.min()
    assert history[-1] > history[0]


def test_m2_without_z_reaches_the_bayes_rate_and_beats_the_supervised_baselines():
    """The chapter's exact result: 10 labels and 3,000 unlabelled points, two seeds."""
    bayes = ss.bayes_accuracy(C, SEP)
    for seed in range(2):
        means, x_lab, y_lab, x_unl, x_test, y_test = _problem(seed)
        logistic = ss.fit_logistic_regression(x_lab, y_lab, C)
        supervised = max(ss.accuracy(logistic(x_test).argmax(-1), y_test),
                         ss.accuracy(ss.log_joint(x_test, ss.nearest_mean(x_lab, y_lab, C)).argmax(-1), y_test))
        for alpha in (0.0, None):                                   # no classification term, the paper's 0.1 N
            model = ss.fit_m2_without_z(x_lab, y_lab, x_unl, alpha=alpha)
            acc = ss.accuracy(model.predict(x_test), y_test)
            assert acc > bayes - 0.02, (seed, alpha, acc, bayes)
            assert acc > supervised + 0.2, (seed, alpha, acc, supervised)
        em_means, _ = ss.semi_supervised_em(x_lab, y_lab, x_unl, n_iter=50)
        assert ss.accuracy(ss.log_joint(x_test, em_means).argmax(-1), y_test) > bayes - 0.02


def test_m2_without_z_objective_is_the_papers_j_alpha_over_n():
    means, x_lab, y_lab, x_unl, _, _ = _problem(n=300)
    model = ss.M2WithoutZ(means)
    torch.nn.init.normal_(model.classifier.weight, generator=torch.Generator().manual_seed(5))
    N = len(x_lab) + len(x_unl)
    log_q = torch.log_softmax(model.classifier(x_lab), -1)[torch.arange(len(x_lab)), y_lab]
    expected = (ss.labelled_bound(x_lab, y_lab, means).sum()
                + ss.unlabelled_bound(x_unl, model.classifier(x_unl), means).sum()
                + ss.paper_alpha(N) * log_q.mean()) / N
    torch.testing.assert_close(model.objective(x_lab, y_lab, x_unl, ss.paper_alpha(N)), expected)


def test_pca_features_are_centred_projections_with_one_scale():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(500, 20, dtype=torch.float64, generator=g) * torch.linspace(0.1, 3, 20, dtype=torch.float64)
    f, f_other = ss.pca_features(x, x[:10], k=5)
    assert f.shape == (500, 5) and f_other.shape == (10, 5)
    torch.testing.assert_close(f[:10], f_other)
    torch.testing.assert_close(f.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(f.pow(2).mean(), torch.tensor(1.0, dtype=torch.float64))
    # the top directions: the feature variances are the top eigenvalues of the covariance, in order
    eig = torch.linalg.eigvalsh(torch.cov(x.T)).flip(0)[:5]
    var = f.var(0)
    torch.testing.assert_close(var / var[0], eig / eig[0], rtol=1e-6, atol=0)


def test_bad_input_is_refused_with_a_message():
    means = ss.simplex_means(3, 4, 1.0)
    with pytest.raises(ValueError, match="dim >= n_classes"):
        ss.simplex_means(5, 3, 1.0)
    with pytest.raises(ValueError, match="separation"):
        ss.simplex_means(3, 4, -1.0)
    with pytest.raises(ValueError, match="at least 2"):
        ss.bayes_accuracy(1, 1.0)
    with pytest.raises(ValueError, match="shape"):
        ss.log_joint(torch.zeros(2, 5, dtype=torch.float64), means)
    with pytest.raises(TypeError, match="integer"):
        ss.labelled_bound(torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2), means)
    with pytest.raises(ValueError, match="0..2"):
        ss.labelled_bound(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([0, 3]), means)
    with pytest.raises(ValueError, match="logits"):
        ss.unlabelled_bound(torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, 2), means)
    with pytest.raises(ValueError, match="fewer than per_class"):
        ss.split_labels(torch.tensor([0, 0, 1]), 2)
    with pytest.raises(ValueError, match="alpha|weight"):
        ss.M2WithoutZ(means).objective(torch.zeros(1, 4, dtype=torch.float64), torch.tensor([0]),
                                       torch.zeros(1, 4, dtype=torch.float64), -1.0)
    with pytest.raises(ValueError, match="noise_scales"):
        ss.sample_classes(means, 3, noise_scales=[1.0, 2.0])
    with pytest.raises(ValueError, match="at most"):
        ss.pca_features(torch.zeros(4, 3), k=5)
