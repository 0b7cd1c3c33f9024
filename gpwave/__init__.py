"""gpwave: wavelet-packet fingerprints and generalising deep-fake audio detectors.

Companion code to "Towards generalizing deep-audio fake detection networks"
(Gasenzer & Wolter, TMLR 2024). One module per pipeline stage:

* :mod:`gpwave.download` -- dataset registries, checksummed downloads, mirrors.
* :mod:`gpwave.data` -- folders -> utterances -> 1 s frames -> splits; the frame store.
* :mod:`gpwave.transforms` -- wavelet packets, STFT, LFCC/MFCC, normalisation.
* :mod:`gpwave.fingerprints` -- mean packet spectra per generator, audible fingerprints.
* :mod:`gpwave.plots` -- the fingerprint figures; a tree's fingerprints written to disk.
* :mod:`gpwave.models` -- DCNN (+ ablations), LCNN, GMM and linear baselines.
* :mod:`gpwave.config` -- typed config checks, YAML reading, ``--set`` values, devices.
* :mod:`gpwave.train` -- the training config, loop, seeds, checkpoints/resume, DDP.
* :mod:`gpwave.metrics` -- ROC, EER, accuracy, bootstrap CIs, paired tests (pure numpy).
* :mod:`gpwave.evaluate` -- scoring waveforms, stores, splits, trees; detection reports.
* :mod:`gpwave.report` -- per-generator tables, seed aggregation, table export.
* :mod:`gpwave.ablation` -- paired ablations and where two detectors disagree.
* :mod:`gpwave.robustness` -- perturbation sweeps and gain sweeps of detectors.
* :mod:`gpwave.attribution` -- integrated gradients and saliency.
* :mod:`gpwave.widgets` -- the fingerprint explorer and its kernel-free twin.
* :mod:`gpwave.cli` -- the ``gpwave`` command.
"""

__version__ = "0.1.0"
