"""gpwave: wavelet-packet fingerprints and generalising deep-fake audio detectors.

Companion code to "Towards generalizing deep-audio fake detection networks"
(Gasenzer & Wolter, TMLR 2024). One module per pipeline stage:

* :mod:`gpwave.download` -- dataset registries, checksummed downloads, mirrors.
* :mod:`gpwave.data` -- folders -> utterances -> 1 s frames -> splits; the frame store.
* :mod:`gpwave.transforms` -- wavelet packets, STFT, LFCC/MFCC, normalisation.
* :mod:`gpwave.fingerprints` -- mean packet spectra per generator, audible fingerprints.
* :mod:`gpwave.models` -- DCNN (+ ablations), LCNN, GMM and linear baselines.
* :mod:`gpwave.pretrained` -- the paper's released checkpoints as detectors.
* :mod:`gpwave.hub` -- one resolver: a released, published or checkpoint detector; publish.
* :mod:`gpwave.config` -- the training config and its defaults, YAML, ``--set``, grids.
* :mod:`gpwave.frames` -- a run's frames, batches, loaders and normaliser fit.
* :mod:`gpwave.fitting` -- how a model is fitted (gradient steps or closed form).
* :mod:`gpwave.dist` -- process group, barriers and reductions for DDP.
* :mod:`gpwave.runs` -- run folders, atomic checkpoints, provenance, convergence.
* :mod:`gpwave.train` -- the training loop, seeds, resume.
* :mod:`gpwave.evaluate` -- scores, EER with bootstrap CIs, per-generator tables.
* :mod:`gpwave.attribution` -- integrated gradients and saliency.
* :mod:`gpwave.widgets` -- the fingerprint explorer and its kernel-free twin.
* :mod:`gpwave.cli` -- the ``gpwave`` command.
"""

__version__ = "0.1.0"
