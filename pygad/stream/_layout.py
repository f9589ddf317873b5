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
N_SCALARS = 11

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
N_PARAMS = 13

TINY = 1e-30
