"""The composer dataset: Freedoom songs as unmixed stems with their composers' own mix as the target.

Built by ``mixbridge datagen composer -o OUT`` (:func:`~.build.build_composer`), read
without torch by :func:`~.reader.read_composer_dataset`. Layout::

    OUT/config.json                        settings, the split by song, the label rules, skipped songs
    OUT/manifest.json                      written last (its presence = complete): every excerpt, its files'
                                           sha256 ("files": {path relative to the excerpt folder: "sha256:..."})
    OUT/excerpts/<id>/stems/*.wav          input stems, float32 stereo, loudness-normalised to one random LUFS
    OUT/excerpts/<id>/stems/manifest.json  demo-style stem list, each stem with its "target" labels
    OUT/excerpts/<id>/target/session.json  the composer's mix as a mixbridge session
    OUT/excerpts/<id>/target/mix.wav       that session's console mix (builtin backend, pre-master)
    OUT/excerpts/<id>/excerpt.json         the excerpt's manifest entry and settings (for resuming)

Modules: :mod:`.labels` (CC7/CC10 -> gain_db/pan), :mod:`.split` (songs -> train/val/test),
:mod:`.build` (planning, rendering, the resumable build), :mod:`.reader`, :mod:`.errors`.
Audio is float32 ``[channels, samples]`` with an explicit ``sample_rate`` in Hz.
"""
from __future__ import annotations

from .errors import ComposerDatasetError, ComposerSettingsError
from .reader import ComposerDataset, ComposerExcerpt, read_composer_dataset

__all__ = ["ComposerDataset", "ComposerDatasetError", "ComposerExcerpt", "ComposerSettingsError",
           "read_composer_dataset"]
