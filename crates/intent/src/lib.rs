//! ML intents: the model, validation, and the pipeline catalog.
