"""Bayesian comparison with a Gaussian model of the effect (spec section 3, "Bayesian").

The data give ``estimate ~ N(lift, SE^2)`` (from ``effect_moments``). With a prior
``lift ~ N(mu0, s0^2)`` the posterior precision is ``1/SE^2 + 1/s0^2`` and the posterior mean
``(estimate/SE^2 + mu0/s0^2) / precision``; the default improper (flat) prior leaves
``N(estimate, SE^2)``. The prior is stated on the **relative** lift; for absolute effects it
is rescaled to ``N(mu0 |mean_A|, s0^2 mean_A^2)``.

Defaults: improper prior; when ``proper=True`` the prior is N(0, 0.3^2). (The reference
engine's back end uses 0.3 while its Python dataclass defaults to 0.1; the spec recommends
0.3, see its note on the default mismatch.)

From the posterior ``N(m, s^2)``: chance to win ``P(lift > 0)``; equal-tailed credible
interval from normal quantiles; risk (expected loss) of each decision in closed form:
shipping the treatment loses ``s phi(m/s) - m Phi(-m/s)``, keeping the control loses
``s phi(m/s) + m Phi(m/s)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._effect import EffectMoments, effect_moments
from ._numeric import all_finite, norm_cdf, norm_pdf, norm_ppf, require_open_unit, require_positive, to_float
from ._types import ArmSums, DifferenceType, ErrorCode

__all__ = [
    "DEFAULT_PRIOR_STDDEV",
    "BayesianResult",
    "BayesianSettings",
    "GaussianPrior",
    "bayesian_test",
    "gaussian_risk",
]

DEFAULT_PRIOR_STDDEV = 0.3
"""Standard deviation of the proper prior on the relative lift."""


@dataclass(frozen=True, slots=True)
class GaussianPrior:
    """Normal prior on the relative lift (a fraction: 0.1 = +10 %)."""

    mean: float = 0.0
    """Prior mean of the relative lift."""
    variance: float = DEFAULT_PRIOR_STDDEV * DEFAULT_PRIOR_STDDEV
    """Prior variance of the relative lift (default 0.3^2); must be positive and finite."""
    proper: bool = False
    """Whether the prior is used at all; False (default) means a flat, improper prior."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", to_float(self.mean))
        object.__setattr__(self, "variance", to_float(self.variance))
        require_positive("prior variance", self.variance)
        if not math.isfinite(self.mean):
            raise ValueError(f"prior mean must be finite, got {self.mean!r}")


@dataclass(frozen=True, slots=True)
class BayesianSettings:
    """Options of the Bayesian comparison. Enum fields also accept their string values
    (e.g. ``"absolute"``); invalid values raise ``ValueError``."""

    alpha: float = 0.05
    """The credible interval has probability ``1 - alpha``."""
    difference: DifferenceType = DifferenceType.RELATIVE
    """Relative (default) or absolute effect."""
    prior: GaussianPrior = field(default_factory=GaussianPrior)
    """Prior on the relative lift; improper by default."""
    inverse: bool = False
    """True when lower values are better (e.g. load time): chance to win becomes
    ``P(lift < 0)`` and the two risks swap."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", to_float(self.alpha))
        require_open_unit("alpha", self.alpha)
        object.__setattr__(self, "difference", DifferenceType(self.difference))


@dataclass(frozen=True, slots=True)
class BayesianResult:
    """Posterior summary of the effect.

    When ``error`` is set the numbers hold their defaults: effect 0, standard deviation 0,
    interval (0, 0), chance to win 0.5, risks 0.
    """

    effect: float
    """Posterior mean of the effect. Unit: a fraction of the control mean (0.05 = +5 %)
    when ``difference`` is relative, else the metric's own units."""
    standard_deviation: float
    """Posterior standard deviation of the effect. Unit: same as ``effect``."""
    ci_lower: float
    """Lower bound of the equal-tailed credible interval. Unit: same as ``effect``."""
    ci_upper: float
    """Upper bound of the equal-tailed credible interval. Unit: same as ``effect``."""
    chance_to_win: float
    """Posterior probability that the treatment is better than the control (``lift > 0``,
    or ``< 0`` for inverse metrics). Unit: probability in [0, 1]."""
    risk_control: float
    """Expected loss of keeping the control: ``E[max(lift, 0)]`` (of ``-lift`` for inverse
    metrics). Unit: same as ``effect``, non-negative."""
    risk_treatment: float
    """Expected loss of shipping the treatment: ``E[max(-lift, 0)]`` (of ``lift`` for
    inverse metrics). Unit: same as ``effect``, non-negative."""
    difference: DifferenceType
    """Whether ``effect`` is relative or absolute. Unit: none (label)."""
    error: ErrorCode | None = None
    """Why the default output was returned, or None. Unit: none (code)."""


def gaussian_risk(mean: float, sd: float) -> tuple[float, float]:
    """Expected losses ``(keep control, ship treatment)`` when ``lift ~ N(mean, sd^2)``.

    ``E[max(lift, 0)]`` and ``E[max(-lift, 0)]``; both non-negative, and their difference is
    ``mean``. ``sd <= 0`` gives the point-mass limit; non-finite input gives ``(0, 0)``.
    """
    mean, sd = to_float(mean), to_float(sd)
    if not all_finite((mean, sd)):
        return 0.0, 0.0
    if sd <= 0.0:
        return max(mean, 0.0), max(-mean, 0.0)
    z = mean / sd
    density = norm_pdf(z)
    keep = sd * density + mean * norm_cdf(z)
    ship = sd * density - mean * norm_cdf(-z)
    return max(keep, 0.0), max(ship, 0.0)


def _default(difference: DifferenceType, error: ErrorCode) -> BayesianResult:
    return BayesianResult(0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, difference, error)


def _scaled_prior(prior: GaussianPrior, moments: EffectMoments) -> tuple[GaussianPrior, ErrorCode | None]:
    """The relative prior expressed on the scale of the effect."""
    if not prior.proper or moments.difference is DifferenceType.RELATIVE:
        return prior, None
    base = moments.control.unadjusted_mean
    scaled_var = prior.variance * base * base
    if not (scaled_var > 0.0 and math.isfinite(scaled_var)):
        return prior, ErrorCode.ZERO_CONTROL_MEAN if base == 0 else ErrorCode.NUMERICAL_ERROR
    return GaussianPrior(prior.mean * abs(base), scaled_var, proper=True), None


def _posterior(estimate: float, se: float, prior: GaussianPrior) -> tuple[float, float]:
    """Posterior mean and standard deviation of the lift."""
    if not prior.proper:
        return estimate, se
    data_precision = 1.0 / se / se
    precision = data_precision + 1.0 / prior.variance
    mean = (estimate * data_precision + prior.mean / prior.variance) / precision
    return mean, math.sqrt(1.0 / precision)


def bayesian_test(
    control: ArmSums,
    treatment: ArmSums,
    settings: BayesianSettings = BayesianSettings(),
) -> BayesianResult:
    """Posterior of the treatment effect, chance to win, credible interval and risks.

    Degenerate inputs (see ``effect_moments``) give the default output with an error code;
    never raises.
    """
    moments = effect_moments(control, treatment, settings.difference)
    if moments.error is not None:
        return _default(settings.difference, moments.error)
    prior, error = _scaled_prior(settings.prior, moments)
    if error is not None:
        return _default(settings.difference, error)
    mean, sd = _posterior(moments.estimate, moments.standard_error, prior)
    if not (all_finite((mean, sd)) and sd > 0.0):
        return _default(settings.difference, ErrorCode.NUMERICAL_ERROR)
    z = mean / sd
    win = norm_cdf(-z) if settings.inverse else norm_cdf(z)
    keep, ship = gaussian_risk(mean, sd)
    if settings.inverse:
        keep, ship = ship, keep
    half = norm_ppf(1.0 - settings.alpha / 2.0) * sd
    return BayesianResult(mean, sd, mean - half, mean + half, win, keep, ship, settings.difference)
