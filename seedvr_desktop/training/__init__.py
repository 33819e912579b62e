"""Fine-tuning SeedVR / SeedVR2 on the user's own footage: `train prepare | run | export`.

The package sits below `engine` in spirit: it reuses the model code (`models`), the media readers
(`media`) and, through `model_io` only, the engine's model-folder loader. Nothing here imports Qt.

    prepare  data folders -> degraded LQ/HQ pairs -> VAE latents in a sharded cache  (cache.py)
    run      cache -> packed varlen batches -> v-prediction MSE -> AdamW + EMA        (trainer.py)
    export   checkpoint -> a model folder the restore engine loads                   (export.py)
"""
