"""gpwave: wavelet-packet fingerprints and generalising deep-fake audio detectors.

Companion code to "Towards generalizing deep-audio fake detection networks"
(Gasenzer & Wolter, TMLR 2024). One module per pipeline stage:

* :mod:`gpwave.download` -- dataset registries, checksummed downloads, mirrors.
* :mod:`gpwave.data` -- folders -> utterances -> 1 s frames -> splits; protocol readers.
* :mod:`gpwave.store` -- the frame store: decoded frames on disk, its index, selection.
* :mod:`gpwave.transforms` -- wavelet packets, STFT, LFCC/MFCC, normalisation.
* :mod:`gpwave.fingerprints` -- mean packet spectra per generator, audible fingerprints.
* :mod:`gpwave.plots` -- the fingerprint figures; a tree's fingerprints written to disk.
* :mod:`gpwave.models` -- DCNN (+ ablations), LCNN, GMM and linear baselines.
* :mod:`gpwave.pretrained` -- the paper's released checkpoints as detectors.
* :mod:`gpwave.hub` -- one resolver: a released, published or checkpoint detector; publish.
* :mod:`gpwave.config` -- the training config and its defaults, YAML, ``--set``, grids.
* :mod:`gpwave.frames` -- a run's frames, batches, loaders and normaliser fit.
* :mod:`gpwave.fitting` -- how a model is fitted (gradient steps or closed form).
* :mod:`gpwave.dist` -- process group, barriers and reductions for DDP.
* :mod:`gpwave.runs` -- run folders, atomic checkpoints, provenance, convergence.
* :mod:`gpwave.train` -- the training loop, seeds, resume.
* :mod:`gpwave.metrics` -- ROC, EER, accuracy, bootstrap CIs, paired tests (pure numpy).
* :mod:`gpwave.evaluate` -- scoring waveforms, stores, splits and folder trees.
* :mod:`gpwave.report` -- per-generator tables, seed aggregation, table export.
* :mod:`gpwave.ablation` -- paired ablations and where two detectors disagree.
* :mod:`gpwave.perturb` -- noise, gain, codecs, resampling, shifts and low-pass.
* :mod:`gpwave.robustness` -- perturbation sweeps and gain sweeps of detectors.
* :mod:`gpwave.detect` -- file-level verdicts: windows, the silence rule, streaming.
* :mod:`gpwave.export` -- a detector as one ONNX graph for the book's in-browser page.
* :mod:`gpwave.attribution` -- integrated gradients and saliency.
* :mod:`gpwave.widgets` -- the fingerprint explorer and its kernel-free twin.
* :mod:`gpwave.cli` -- the ``gpwave`` command.
"""

__version__ = "0.1.0"
