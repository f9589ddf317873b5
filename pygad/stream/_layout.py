"""Index constants of the per-key scalar state and of the parameter vector.

Shared by the Numba kernels, their Python twins and the estimator classes, so that the
layout is defined once. Scalar state is float64 ``[K, N_SCALARS]``; parameters are a
float64 vector of length ``N_PARAMS`` passed to every kernel.
"""
# scalar state (one row per key)
N_SEEN = 0        # valid samples learned
N_INVALID = 1     # samples skipped because of NaN/inf (on_invalid="skip")
EPOCH_END = 2     # doubling trick: sample count at which the next epoch starts
ETA = 3           # current learning rate lr * T**-alpha
CLIP_Q = 4        # running quantile of gradient norms (adaptive clip); 0 = not started
AUX = 5           # Mean: mean per-dimension scale; Linear: residual scale
BIAS = 6          # Linear/Logistic: intercept
TH_MED = 7        # threshold: streaming median of scores
TH_HI = 8         # threshold: streaming upper quantile of scores
TH_DEV = 9        # threshold: running mean absolute deviation of scores from the median
TH_N = 10         # threshold: scores seen
GN_SLOW = 11      # slow running mean of clipped gradient norms: floor of the adaptive clip
AUX_SLOW = 12     # slow running mean of AUX: floor of the scale (cannot collapse in a quiet run)
MAG = 13          # slow running mean of |x| (Mean) or |y| (Linear): the data's magnitude
LK_SHORT = 14     # anomaly probability: short-window mean of log1p(score)
LK_MEAN = 15      # anomaly probability: long-run mean of LK_SHORT
LK_VAR = 16       # anomaly probability: long-run variance of LK_SHORT
LK_N = 17         # anomaly probability: scores seen
N_SCALARS = 18
#: archives written before the floors and probabilities existed hold this many scalars
N_SCALARS_V1 = 11

# parameter vector
P_LR = 0
P_ALPHA = 1
P_HORIZON = 2        # 0 = unknown horizon (doubling trick)
P_CLIP = 3           # > 0: fixed clip threshold; 0: adaptive
P_CLIP_MULT = 4      # adaptive clip = CLIP_MULT * running CLIP_QUANTILE of gradient norms
P_CLIP_QUANTILE = 5
P_CLIP_LR = 6        # multiplicative step of the running quantile
P_REG = 7            # Mean: scale floor (fraction of mean scale); Linear/Logistic: L2
P_TH_QUANTILE = 8
P_TH_MARGIN = 9
P_TH_LR = 10
P_TH_WARMUP = 11
P_SCORE_CLIP = 12     # Mean: cap of each coordinate's standardised residual in the score
P_SLOW_RATE = 13      # rate of the slow long-run statistics once 1/n falls below it
P_EPS_MAG = 14        # magnitude floor: a few units of roundoff of the state dtype
P_LK_SHORT = 15       # anomaly probability: short window (scores)
P_LK_LONG = 16        # anomaly probability: long-run window (scores)
P_LK_WARMUP = 17      # anomaly probability: scores before it leaves 0.5
P_FC_LAGS = 18        # Forecaster: number of lags
P_FC_DRIFT = 19       # Forecaster: CUSUM allowance (slow-scale units)
P_FC_CHANGE = 20      # Forecaster: CUSUM decision level (slow-scale units)
P_FC_FAST = 21        # Forecaster: rate of the fast residual scale
P_FC_WARMUP = 22      # Forecaster: samples before the score leaves 0
P_FC_MODE = 23        # Forecaster: score 0 = novelty, 1 = standardised residual
P_FC_BINS = 24        # Forecaster: season phases (0: no season)
P_SUB_BASIS_LR = 25   # Subspace: step of the basis relative to the location's
P_LK_SKIP = 26        # anomaly probability: a key's first scores it ignores (the estimator's
                      # own warm-up, when its scores are 0 by construction)
P_TINY_SQ = 27        # the smallest squared scale (the state dtype's smallest normal number)
N_PARAMS = 28

SLOW_RATE = 1e-3      # the slow statistics average over about the last 1,000 samples
SCALE_FLOOR_SLOW = 0.25   # a scale never falls below this fraction of its slow running mean
CLIP_FLOOR_SLOW = 0.25    # nor the adaptive clip below this fraction of the slow gradient norm
EPS_MAG_ULPS = 8.0        # magnitude floor in units of the dtype's machine epsilon
ENVELOPE_RATE = 1e-5      # Forecaster: the envelope of values seen shrinks this fast

TINY = 1e-30
