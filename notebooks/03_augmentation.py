# ---
# jupyter:
#   jupytext:
#     formats: py:percent,outputs//ipynb
#     notebook_metadata_filter: -jupytext.text_representation
#   kernelspec:
#     display_name: Python (sign-mnist)
#     language: python
#     name: sign-mnist
# ---

# %% [markdown]
# # Task 3 — Data augmentation: how does it change the classifier?
#
# **What:** continue training the Task 2 networks on randomly rotated, shifted, zoomed, sheared,
# brightened and contrasted copies of the training images — on the grouped split to judge the
# recipe, then on every training image for the final network — and compare them with the Task 2
# networks, on the test set and on test images perturbed in controlled ways.
#
# **How well:** the seed lab report trained its network 50 more epochs on augmented batches and
# went from 0.9714 to 0.9964 test accuracy. The conclusion gives what this run reached, and how
# much more robust augmentation made the network.

# %% tags=["parameters"]
DATA_DIR = None  # folder with the two CSV files; None: $SIGN_MNIST_DIR, data/, kagglehub, else the stand-in
OUTPUT_DIR = "outputs/03_augmentation"  # where models and metrics.json go
TASK2_DIR = "outputs/02_cnn"  # the Task 2 run whose models are trained further here
PROFILE = "full"  # {"quick", "full"}: "quick" takes the quick settings of the next cell
SEED = 0  # [0, 4294967295]
SPLIT_KIND = "grouped"  # {"grouped", "random"}
VALIDATION_FRACTION = 0.3  # (0.0, 1.0)
SPLIT_SEED = 43  # [0, 4294967295]
FAMILY_THRESHOLD = 0.97  # (0.0, 1.0]
EPOCHS = 16  # [1, 1000]: further epochs of ours on augmented batches; the reference: about the same seconds
REFERENCE_STEP_COST = 0.92  # (0.0, 100.0]: seconds of a reference step per step of ours (calibrated once)
BATCH_SIZE = 128  # [1, 65536]
LEARNING_RATE = 2e-3  # (0.0, 1.0]
EMA_MOMENTUM = 0.998  # [0.0, 1.0): average the weights over about 1/(1 - EMA_MOMENTUM) steps; 0: the last
STATISTICS_IMAGES = 2048  # [0, inf): clean images for each epoch's batch-norm statistics; 0: training's own
KEEP_TOLERANCE = None  # [0.0, 1.0]: keep the last epoch unless this far below the best; None: 2 std. errors
ROTATION_DEGREES = 12.0  # [0.0, 180.0]: our augmentation (the reference keeps its own 10°, 0.05, 0.1, 0.075)
SHIFT = 0.1  # [0.0, 1.0)
ZOOM = 0.12  # [0.0, 1.0)
SHEAR = 0.1  # [0.0, 1.0)
CONTRAST = 0.3  # [0.0, 1.0)
BRIGHTNESS = 0.2  # [0.0, 1.0]
BLUR = 0.75  # [0.0, 10.0]: largest Gaussian blur sigma, pixels (a sigma per image, the lens)
NOISE = 0.08  # [0.0, 1.0]: largest Gaussian noise stddev of the 0-1 range (a stddev per image, the sensor)
CORRUPTION_RATE = 0.5  # [0.0, 1.0]: share of images under a named Sign-MNIST-C type (the camera's faults)
CORRUPTION_SEVERITY = 3  # [1, 5]: highest severity those corruptions are drawn at
ROBUSTNESS_IMAGES = 1000  # [1, inf): test images (a seeded sample) for the robustness study; None: all
CORRUPTION_IMAGES = 500  # [1, inf): test and validation images (seeded samples) for Sign-MNIST-C; None: all
TRAIN_LIMIT = None  # [1, inf): use only this many training images (quick runs); None: all

# %% [markdown]
# With `PROFILE = "quick"` the notebook runs in minutes: the quick profile's settings replace the
# parameters above (the report runner's quick profile uses the same ones, and sets every parameter
# itself in a cell it adds after this one).

# %% tags=["profile"]
import labutils as lu

quick = lu.QUICK_SETTINGS["03_augmentation"] if PROFILE == "quick" else {}
EPOCHS = quick.get("EPOCHS", EPOCHS)
TRAIN_LIMIT = quick.get("TRAIN_LIMIT", TRAIN_LIMIT)
ROBUSTNESS_IMAGES = quick.get("ROBUSTNESS_IMAGES", ROBUSTNESS_IMAGES)
CORRUPTION_IMAGES = quick.get("CORRUPTION_IMAGES", CORRUPTION_IMAGES)
EMA_MOMENTUM = quick.get("EMA_MOMENTUM", EMA_MOMENTUM)
STATISTICS_IMAGES = quick.get("STATISTICS_IMAGES", STATISTICS_IMAGES)
quick

# %% [markdown]
# ## Data, split and the Task 2 networks
#
# The same data and grouped split as before. Two objects hold the data: `dataset`, the Kaggle rows as
# they are (uint8 images, the Kaggle labels 0–24, which skip J), and `inputs`, the arrays the networks
# read (0–1 images with a channel axis, class indices 0–23). The two networks trained in Task 2 are
# loaded from its run folder (run notebook 02 first): both networks trained on the split's training
# side, and our final network trained on every training image.

# %%
import dataclasses
import functools
import math
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from livelossplot import PlotLossesKeras

pd.set_option("display.max_colwidth", None)  # tables show their text in full
output_dir, dataset, split, inputs = lu.start_task(
    OUTPUT_DIR,
    seed=SEED,
    data_dir=DATA_DIR,
    split_kind=SPLIT_KIND,
    validation_fraction=VALIDATION_FRACTION,
    split_seed=SPLIT_SEED,
    family_threshold=FAMILY_THRESHOLD,
    train_limit=TRAIN_LIMIT,
)

# %%
task2_dir = Path(TASK2_DIR)
# checked: that notebook's metrics.json, computed on these data, its model files there
task2_metrics = lu.read_task_metrics(task2_dir, "02_cnn", dataset.source)
task2 = {
    name: lu.load_model(task2_dir / record["model_file"]) for name, record in task2_metrics["models"].items()
}
print(f"Task 2's networks read from {task2_dir.resolve()} ({task2_metrics['profile']} profile)")
pd.DataFrame(task2_metrics["models"]).T[["test_accuracy", "test_errors", "train_seconds", "epochs"]]

# %% [markdown]
# ## The augmentation
#
# Every image of every batch gets a new random change, inside the `tf.data` pipeline. The recipe
# (`lu.Task3Recipe`, the one object the benchmark trains with too) builds it as a Keras model, whose
# layers run in the order a picture meets them:
#
# 1. the hand's pose: one affine map combining rotation, shift, zoom and shear, applied in a single
#    bilinear resampling (`lu.RandomAffine`; chaining Keras' RandomRotation, RandomTranslation,
#    RandomZoom and RandomShear would interpolate a 28×28 image four times and blur it);
# 2. the camera's faults: a share `CORRUPTION_RATE` of the images under one Sign-MNIST-C corruption
#    (the suite of the section "Corruptions nobody named" below) at a severity up to
#    `CORRUPTION_SEVERITY` (`RandomCorruption`). Its types are drawn from the *named* ones only:
#    the held-out types (`lu.HELD_OUT_CORRUPTIONS`) never reach training, so scoring them at the end
#    still answers whether the robustness carries over to corruptions nobody trained for;
# 3. the lens: a Gaussian blur of a random sigma up to `BLUR` pixels (`lu.RandomGaussianBlur`);
# 4. the exposure: Keras' RandomContrast and RandomBrightness;
# 5. the sensor: Gaussian noise of a random standard deviation up to `NOISE` (`lu.RandomGaussianNoise`).
#
# Why whole corruptions of the suite, rather than new operations of our own: what is trained on and
# what is held out then stay apart by name, and the held-out answer stays honest. The share and the
# highest severity were chosen on the grouped validation split under the named types, over two
# seeds (`docs/decisions.md`, "Augmentation that generalises"); the other images keep only the
# pose, lens, exposure and sensor changes, so the network still sees plenty of clean hands.
#
# A factor of 0 leaves its change out. The hand is never mirrored: a mirrored sign is made with the
# other hand and can read as another letter. The table lists the layers the recipe built, with
# their settings, as `summary()` lists a model's.

# %%
camera = lu.Augmentation(
    rotation_degrees=ROTATION_DEGREES,
    shift=SHIFT,
    zoom=ZOOM,
    shear=SHEAR,
    contrast=CONTRAST,
    brightness=BRIGHTNESS,
    blur=BLUR,
    noise=NOISE,
    corruption_rate=CORRUPTION_RATE,
    corruption_severity=CORRUPTION_SEVERITY,
)
recipe = lu.Task3Recipe(
    epochs=EPOCHS,
    batch_size=BATCH_SIZE,
    learning_rate=LEARNING_RATE,
    ema_momentum=EMA_MOMENTUM,
    statistics_images=STATISTICS_IMAGES,
    augmentation=camera,
)
augment = recipe.augmentation.pipeline(SEED)
lu.steps_table(augment)

# %% [markdown]
# Below, one training image of each of six letters (left column) and eleven random augmentations of it:
# about a share `CORRUPTION_RATE` of them also carry one of the camera's faults.

# %%
examples = [int(np.flatnonzero(inputs.y_train == index)[0]) for index in np.unique(inputs.y_train)[:6]]
originals = np.repeat(inputs.x_train[examples], 12, axis=0)
augmented = np.array(augment(originals, training=True))  # a writable copy
augmented[::12] = inputs.x_train[examples]
titles = [lu.LETTERS[inputs.y_train[i]] if k == 0 else "" for i in examples for k in range(12)]
lu.plot_image_grid(augmented[..., 0], titles, columns=12)
plt.show()

# %% [markdown]
# ## Training our network further on augmented batches
#
# The Task 2 network continues from its weights with a fresh warm-up + cosine schedule at a
# lower peak. The optimizer also keeps an exponential moving average of the weights (Polyak
# averaging, `use_ema=True`: about the last 1/(1 − `EMA_MOMENTUM`) steps). Even near the end of the
# schedule each epoch still moves the weights enough to turn a borderline family of near-identical
# images right or wrong; the average smooths those last steps out.


# %%
def continue_ours(task2_model, training_rows):
    """A copy of a Task 2 network, compiled with the recipe's AdamW and a fresh warm-up + cosine schedule
    over its epochs of `training_rows` images (averaging its weights if `EMA_MOMENTUM` > 0)."""
    model = keras.models.clone_model(task2_model)
    model.set_weights(task2_model.get_weights())
    model.compile(
        optimizer=recipe.optimizer(training_rows),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# %% [markdown]
# The callbacks run in the order of their list, at the end of every epoch:
#
# - the recipe's two come first. `lu.SwapAverageWeights` puts the averaged weights into the network,
#   so that the validation and every later callback see, and the network keeps, the average. Then
#   `lu.RecomputeBatchNormStatistics` recomputes the batch-norm statistics, layer by layer, for the
#   averaged weights on `STATISTICS_IMAGES` clean training images: during training they followed the
#   augmented batches and the raw weights, neither of which is what the network meets afterwards.
#   On the grouped validation this made the per-epoch scores steadier and the log-loss lower
#   (`docs/decisions.md`).
# - `lu.EpochClock` records the seconds; `lu.FinalOrBest` keeps the last epoch unless its grouped
#   validation accuracy falls more than `KEEP_TOLERANCE` below the best epoch's (by default two
#   standard errors of that accuracy): picking the very best epoch would pick noise, as one family of
#   near-copies more or less moves the accuracy by tenths of a point; `PlotLossesKeras` draws the curves.

# %%
ours = continue_ours(task2["compact_cnn"], len(inputs.x_train))
keep = lu.FinalOrBest(
    "val_accuracy",
    tolerance=KEEP_TOLERANCE,  # None: two standard errors over the validation families
    families=split.validation_families if KEEP_TOLERANCE is None else None,
)
callbacks = [*recipe.callbacks(inputs.x_train, SEED), lu.EpochClock(), keep, PlotLossesKeras()]
lu.steps_table(callbacks)

# %% [markdown]
# The Task 2 network trained on the split's training side continues here, its validation side
# scored after every epoch:

# %%
ours_history = ours.fit(
    lu.training_dataset(
        inputs.x_train, inputs.y_train, batch_size=recipe.batch_size, seed=SEED, augmentation=augment
    ),
    validation_data=(inputs.x_val, inputs.y_val),
    validation_batch_size=512,
    epochs=recipe.epochs,
    verbose=2,
    callbacks=callbacks,
)

# %%
ours_log = lu.history_frame(ours_history)
ours_seconds = float(ours_log["seconds"].iloc[-1])
lu.show_markdown(keep.describe())
ours_log.round(4)

# %% [markdown]
# ## The reference network, further trained with its own augmentation
#
# As in the seed report: Nadam, batch 128, its geometric augmentation only. As in Task 2 it gets
# our network's training time in steps, our steps divided by `REFERENCE_STEP_COST` (a reference
# step's seconds per step of ours here, with both augmentations and ours' end-of-epoch callbacks,
# calibrated once on an unloaded 2-core CPU: `docs/decisions.md`), so that a busy machine changes
# its seconds, not its figures.

# %%
reference = keras.models.clone_model(task2["seed_cnn"])
reference.set_weights(task2["seed_cnn"].get_weights())
reference_recipe = lu.ReferenceRecipe()
reference.compile(
    optimizer=reference_recipe.optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
)
ours_steps = len(ours_log) * lu.steps_per_epoch(len(inputs.x_train), recipe.batch_size)
reference_steps = max(1, round(ours_steps / REFERENCE_STEP_COST))
budget = lu.StepBudget(reference_steps)  # the last epoch may be cut short
reference_history = reference.fit(
    lu.training_dataset(
        inputs.x_train,
        inputs.y_train,
        batch_size=reference_recipe.batch_size,
        seed=SEED,
        augmentation=reference_recipe.augmentation(SEED),
    ),
    validation_data=(inputs.x_val, inputs.y_val),
    validation_batch_size=512,
    epochs=math.ceil(reference_steps / lu.steps_per_epoch(len(inputs.x_train), reference_recipe.batch_size)),
    verbose=2,
    callbacks=[lu.EpochClock(), budget, PlotLossesKeras()],
)

# %%
reference_log = lu.history_frame(reference_history)
reference_seconds = float(reference_log["seconds"].iloc[-1])
step_cost_here = (reference_seconds / reference_steps) / (ours_seconds / ours_steps)
cut_short = (
    f", the last cut short after {budget.steps_done} of {budget.steps_per_epoch} steps"
    if budget.cut_short
    else ""
)
lu.show_markdown(
    f"The reference network ran {reference_steps:,} more steps ({lu.plural(len(reference_log), 'epoch')}"
    f"{cut_short}) in {reference_seconds:.0f} s, ours {ours_steps:,} steps in {ours_seconds:.0f} s: a "
    f"reference step cost {step_cost_here:.2f} of ours here (calibrated: {REFERENCE_STEP_COST:.2f})."
)

# %% [markdown]
# ## The final network: augmentation on every training image
#
# As in Task 2, the recipe chosen on the grouped split — this augmentation, this schedule,
# stopped at the epoch `lu.FinalOrBest` kept above — is applied once more to every labelled
# training image, starting from Task 2's final network (which was trained on all of them too).
# This network has no validation score of its own; the split run above is its validation. The
# random generators are reseeded first, here too: the final network depends on `SEED` and the
# recipe alone, not on what the cells above happened to draw. Its callbacks are the recipe's, the
# clock and the curves: there is no validation side to keep an epoch by.

# %%
keras.utils.set_random_seed(SEED)
final = continue_ours(task2["compact_cnn_final"], len(inputs.x_all))
final_history = final.fit(
    lu.training_dataset(
        inputs.x_all,
        inputs.y_all,
        batch_size=recipe.batch_size,
        seed=SEED,
        augmentation=recipe.augmentation.pipeline(SEED),
    ),
    epochs=keep.kept_epoch,
    verbose=2,
    callbacks=[*recipe.callbacks(inputs.x_all, SEED), lu.EpochClock(), PlotLossesKeras()],
)

# %%
final_log = lu.history_frame(final_history)
final_seconds = float(final_log["seconds"].iloc[-1])
lu.show_markdown(
    f"{len(final_log)} augmented epochs on {len(inputs.x_all):,} images took {final_seconds:.0f} s."
)
final_log.round(4)

# %% [markdown]
# ## Test results: with and without augmentation
#
# Six networks meet the test set: each architecture trained on the split's training side, after
# Task 2 (no augmentation) and after this notebook's augmented training, under the same budget —
# and our final networks, trained on every training image, before and after augmentation. The
# seed report's published figures stand beside them.

# %%
models = {
    "compact_cnn (Task 2)": task2["compact_cnn"],
    "compact_cnn_augmented": ours,
    "seed_cnn (Task 2)": task2["seed_cnn"],
    "seed_cnn_augmented": reference,
    "compact_cnn_final (Task 2)": task2["compact_cnn_final"],
    "compact_cnn_augmented_final": final,
}
probabilities = {
    name: model.predict(inputs.x_test, batch_size=512, verbose=0) for name, model in models.items()
}
test_metrics = {name: lu.classification_metrics(inputs.y_test, p) for name, p in probabilities.items()}
# the final networks have no validation score: they trained on the validation images
val_accuracy = {
    name: float(model.evaluate(inputs.x_val, inputs.y_val, batch_size=512, verbose=0)[1])
    for name, model in models.items()
    if "final" not in name
}

# %%
results = pd.DataFrame(test_metrics).T
results["grouped val accuracy"] = pd.Series(val_accuracy)
results.loc["seed report, Task 3 (published)"] = {
    "accuracy": lu.SEED_REPORT.task3_accuracy,
    "log_loss": lu.SEED_REPORT.task3_log_loss,
}
results.round(4)

# %%
before, after = test_metrics["compact_cnn (Task 2)"], test_metrics["compact_cnn_augmented"]
reference_before, reference_after = test_metrics["seed_cnn (Task 2)"], test_metrics["seed_cnn_augmented"]
final_before, final_after = (
    test_metrics["compact_cnn_final (Task 2)"],
    test_metrics["compact_cnn_augmented_final"],
)
lu.show_markdown(
    f"Trained on the split's training side, augmentation takes our network from {before['accuracy']:.4f} "
    f"to {after['accuracy']:.4f} test accuracy ({before['errors']} → {after['errors']} errors), and the "
    f"reference network from {reference_before['accuracy']:.4f} to {reference_after['accuracy']:.4f} in "
    f"about the same time (the seed report: {lu.SEED_REPORT.task2_accuracy:.4f} → "
    f"{lu.SEED_REPORT.task3_accuracy:.4f} after 50 more epochs). Our final network goes from "
    f"{final_before['accuracy']:.4f} to "
    f"**{final_after['accuracy']:.4f}** ({final_before['errors']} → {final_after['errors']} errors)."
)

# %% [markdown]
# ## Where the augmented network still errs
#
# Per-letter scores of the final augmented network (worst F1 first), its confusion matrix and the
# misclassified test images.

# %%
predicted = probabilities["compact_cnn_augmented_final"].argmax(axis=1)
lu.per_letter_report(inputs.y_test, predicted).sort_values("f1").head(8).round(4)

# %%
lu.plot_confusion_matrix(inputs.y_test, predicted)
plt.show()

# %%
ax = lu.plot_misclassified(dataset.x_test, inputs.y_test, predicted, limit=24)
if ax is None:
    lu.show_markdown("No test image is misclassified.")
else:
    plt.show()

# %% [markdown]
# ## Errors by family of test photographs
#
# As in Task 2, the test images are grouped into families of near-copies of one photograph; the
# table lists the families the final augmented network still gets wrong, most errors first.

# %%
test_families = lu.near_duplicate_families(dataset.x_test, inputs.y_test, threshold=FAMILY_THRESHOLD)
family_tables = {
    name: lu.errors_by_family(inputs.y_test, p.argmax(axis=1), test_families)
    for name, p in probabilities.items()
}
families_with_errors = {name: int((table["errors"] > 0).sum()) for name, table in family_tables.items()}
by_family = family_tables["compact_cnn_augmented_final"]
wrong_families = by_family[by_family["errors"] > 0]
wrong_families.head(10)

# %% [markdown]
# A family is *misread as a whole* when more than half of its images are wrong: then the network
# fails on the photograph itself, not on a few of its copies.

# %%
counts = families_with_errors
misread_whole = wrong_families["errors"] > wrong_families["images"] / 2
whole_share = wrong_families.loc[misread_whole, "errors"].sum() / max(int(wrong_families["errors"].sum()), 1)
lu.show_markdown(
    f"Of the {len(by_family)} test families, our final network gets {counts['compact_cnn_final (Task 2)']} "
    f"at least partly wrong after Task 2 and **{counts['compact_cnn_augmented_final']}** after augmentation "
    f"(trained on the split's training side: {counts['compact_cnn (Task 2)']} → "
    f"{counts['compact_cnn_augmented']}; the reference network: {counts['seed_cnn (Task 2)']} → "
    f"{counts['seed_cnn_augmented']}). {whole_share:.0%} of the final network's errors lie in families it "
    "misreads as a whole."
)

# %% [markdown]
# ### Are the families it misses unlike anything it learnt from?
#
# A family can stay wrong because the network failed to learn its letter well enough, or because
# the photograph looks like no training photograph of its letter. For every test family we look up
# the training image most like it (the Pearson correlation of the pixels, the best over the
# family's images, among all the rows of the final fit) and the one most like it among its own
# letter. The grid shows, for up to eight families the final network gets wrong, one test image,
# the nearest training image and the nearest of its own letter, titled with letter and correlation.

# %%
neighbours = lu.family_neighbours(inputs.x_test, inputs.y_test, test_families, inputs.x_all, inputs.y_all)
missed_neighbours = neighbours.loc[wrong_families.index]
elsewhere = missed_neighbours[missed_neighbours["nearest_letter"] != missed_neighbours["letter"]]
missed_neighbours[["letter", "images", "nearest_letter", "nearest_similarity", "own_letter_similarity"]].head(
    10
).round(3)

# %%
if len(missed_neighbours):
    lu.plot_family_neighbours(inputs.x_test, inputs.x_all, missed_neighbours.head(8))
    plt.show()
else:
    lu.show_markdown("The final augmented network gets no test family wrong: nothing to show.")

# %% [markdown]
# The rule: a missed family is *unlike its letter's training photographs* when its best match in its
# own letter is weaker than that of at least `UNLIKE_SHARE` of all test families. Then reading it
# takes generalising past every example; otherwise the miss is the network's, not the data's.

# %%
UNLIKE_SHARE = 0.75
# per missed family: the share of all test families whose best match in their own letter is stronger
stronger_elsewhere = missed_neighbours["own_letter_similarity"].map(
    lambda similarity: (neighbours["own_letter_similarity"] > similarity).mean()
)
unlike_their_letter = bool(stronger_elsewhere.median() >= UNLIKE_SHARE)  # False when it misses none
task2_missed = family_tables["compact_cnn_final (Task 2)"].query("errors > 0").index
set_right = task2_missed.difference(wrong_families.index)
unlike_their_letter

# %%
if wrong_families.empty:
    standing = "It misses no family."
elif unlike_their_letter:
    standing = "They are unlike their letter's training photographs: the misses are the data's."
else:
    standing = (
        "They are not unusually far from their letter's training photographs: the misses are the network's."
    )
lu.show_markdown(
    f"Augmentation set right {len(set_right)} of the {len(task2_missed)} families our final network missed "
    f"after Task 2; it now misses {len(wrong_families)}, {len(elsewhere)} of them nearer to a training "
    f"photograph of another letter than to any of their own. {standing}"
)

# %% [markdown]
# ## Robustness: the real answer to "how did augmentation change the classifier?"
#
# Our networks before and after augmentation (split-trained and final), and the reference network
# after its own augmentation, see the same test images rotated, shifted, scaled, dimmed or
# brightened with less contrast, noised and blurred, at growing strength (strength 0 is the
# unperturbed images), and all of these at once: `mixed`, a mild everyday camera at strength 1
# (`lu.CAMERA`: 5°, 5 % scale and shift, blur σ 0.5 px, 0.2 contrast and brightness, noise σ 0.03).
# A seeded random sample of `ROBUSTNESS_IMAGES` test images keeps this study to about a minute.

# %% tags=["thumbnail"]
if ROBUSTNESS_IMAGES is None or ROBUSTNESS_IMAGES >= len(inputs.x_test):
    sample = np.arange(len(inputs.x_test))
else:
    sample = np.sort(np.random.default_rng(SEED).choice(len(inputs.x_test), ROBUSTNESS_IMAGES, replace=False))
compared = [
    "compact_cnn (Task 2)",
    "compact_cnn_augmented",
    "compact_cnn_final (Task 2)",
    "compact_cnn_augmented_final",
    "seed_cnn_augmented",
]
predictors = {name: functools.partial(models[name].predict, batch_size=512, verbose=0) for name in compared}
robustness = lu.robustness_table(predictors, inputs.x_test[sample], inputs.y_test[sample], seed=SEED)
lu.plot_robustness(robustness)
plt.show()

# %% [markdown]
# The mean accuracy over each perturbation's strengths, and what augmentation gained for our final network:

# %%
robust = lu.robustness_by_model(
    robustness
)  # per model: {perturbation: {strength: accuracy}}, for metrics.json
mean_accuracy = robustness[robustness.strength > 0].pivot_table(
    index="perturbation", columns="model", values="accuracy"
)
gains = mean_accuracy["compact_cnn_augmented_final"] - mean_accuracy["compact_cnn_final (Task 2)"]
mean_accuracy["gain from augmentation"] = gains
mean_accuracy.round(4)

# %% [markdown]
# The augmentation imitates some of these perturbations, where its gain should show; the others test
# how far it generalises.

# %%
imitated = {
    "rotation": ROTATION_DEGREES > 0,
    "shift": SHIFT > 0,
    "scale": ZOOM > 0,
    "brightness_contrast": CONTRAST > 0 or BRIGHTNESS > 0,
    "blur": BLUR > 0,
    "noise": NOISE > 0,
    "mixed": BLUR > 0 and NOISE > 0,
}
hurt = gains[gains < 0]
lu.show_markdown(
    f"Augmentation changes our final network's mean accuracy under perturbation by {gains.mean():+.3f}: most "
    f"under **{gains.idxmax()}** ({gains.max():+.3f}), least under **{gains.idxmin()}** "
    f"({gains.min():+.3f}). It lowers the accuracy under {len(hurt)} of the {len(gains)} perturbations. "
    f"Imitated by the augmentation: {', '.join(name for name, on in imitated.items() if on) or 'none'}; not "
    f"imitated: {', '.join(name for name, on in imitated.items() if not on) or 'none'}."
)

# %% [markdown]
# ## Corruptions nobody named: Sign-MNIST-C
#
# The perturbations above are the ones our augmentation imitates, so its gain there is expected. A
# webcam does more: grain of several kinds, a lens out of focus or in motion, compression, a picture
# too dark or too bright, a hand warped or partly hidden. Sign-MNIST-C (`lu.corrupt`, in the spirit of
# MNIST-C and ImageNet-C) applies such corruptions, grouped in families (`lu.CORRUPTION_FAMILIES`), at
# severities 1 to 5: 1–3 stand for what ordinary cameras do, 4–5 for bad ones. Some types are **held
# out** (`lu.HELD_OUT_CORRUPTIONS`, at least one per family, fixed before any network was scored on
# them; `docs/decisions.md`): no choice of this project looks at them, so they answer whether
# robustness carries over to what nobody trained for. The named types may be trained on, as the
# camera's faults of our augmentation are; the held-out ones never are. One grouped-validation image
# under each:

# %%
SEVERITIES = (1, 2, 3, 4, 5)
kinds = list(lu.CORRUPTION_FAMILIES)
example = inputs.x_val[:1]
figure, axes = plt.subplots(len(kinds), 6, figsize=(6.6, 1.1 * len(kinds)), layout="constrained")
for row, kind in zip(axes, kinds):
    pictures = [example] + [lu.corrupt(example, kind, severity, seed=SEED) for severity in SEVERITIES]
    for ax, picture in zip(row, pictures):
        ax.imshow(picture[0, ..., 0], cmap="gray", vmin=0, vmax=1)
        ax.set(xticks=[], yticks=[])
    label = f"{kind}\n{lu.CORRUPTION_FAMILIES[kind]}{', held out' if kind in lu.HELD_OUT_CORRUPTIONS else ''}"
    row[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
for ax, title in zip(axes[0], ["clean", *(f"severity {severity}" for severity in SEVERITIES)]):
    ax.set_title(title, fontsize=8)
plt.show()

# %% [markdown]
# Every network above reads the same seeded sample of `CORRUPTION_IMAGES` test images under every
# corruption and severity (`lu.robustness_table` with `apply=lu.corrupt`):

# %%
rng = np.random.default_rng(SEED)
test_count = min(CORRUPTION_IMAGES or len(inputs.x_test), len(inputs.x_test))
on_test = np.sort(rng.choice(len(inputs.x_test), test_count, replace=False))
x_corruption, y_corruption = inputs.x_test[on_test], inputs.y_test[on_test]
corruptions = lu.robustness_table(
    predictors,
    x_corruption,
    y_corruption,
    strengths={kind: SEVERITIES for kind in kinds},
    seed=SEED,
    apply=lu.corrupt,
)
lu.plot_robustness(corruptions, title=f"Test accuracy under Sign-MNIST-C ({len(on_test):,} test images)")
plt.show()

# %% [markdown]
# Per network: its clean accuracy on the same images, the mean accuracy over severities 1–3 and 1–5
# (each type weighs the same), over the held-out types at 1–3, and the worst type at 1–3
# (`lu.corruption_summary`); `relative_1_3` divides the mean at 1–3 by the clean accuracy.

# %%
clean = {
    name: float(np.mean(predict(x_corruption).argmax(axis=1) == y_corruption))
    for name, predict in predictors.items()
}
corruption = lu.corruption_summary(corruptions)
corruption.insert(0, "clean", pd.Series(clean))
corruption["relative_1_3"] = corruption["corruption_mean_1_3"] / corruption["clean"]
corruption.round(4)

# %% [markdown]
# Choices are made on the grouped validation split and the named types only; the split-trained
# networks read a seeded validation sample under the corruptions that may guide a choice:

# %%
validation_count = min(CORRUPTION_IMAGES or len(inputs.x_val), len(inputs.x_val))
on_validation = np.sort(rng.choice(len(inputs.x_val), validation_count, replace=False))
named = {kind: SEVERITIES for kind in kinds if kind not in lu.HELD_OUT_CORRUPTIONS}
split_trained = {name: predictors[name] for name in ("compact_cnn (Task 2)", "compact_cnn_augmented")}
validation_corruptions = lu.robustness_table(
    split_trained,
    inputs.x_val[on_validation],
    inputs.y_val[on_validation],
    strengths=named,
    seed=SEED,
    apply=lu.corrupt,
)
lu.corruption_summary(validation_corruptions).drop(columns="held_out_mean_1_3").round(4)

# %% [markdown]
# Does the robustness carry over to the held-out types? Our final network's mean at severities 1–3
# on them against the named types, with `CARRIES_OVER` as the largest drop that still counts as "yes":

# %%
CARRIES_OVER = 0.02  # the held-out mean at most this far below the named types' mean
mild = corruptions[(corruptions.strength <= 3) & (corruptions.model == "compact_cnn_augmented_final")]
held_out = (
    mild[mild.perturbation.isin(lu.HELD_OUT_CORRUPTIONS)].groupby("perturbation").accuracy.mean().mean()
)
named_mean = (
    mild[~mild.perturbation.isin(lu.HELD_OUT_CORRUPTIONS)].groupby("perturbation").accuracy.mean().mean()
)
ours_c, before_c = corruption.loc["compact_cnn_augmented_final"], corruption.loc["compact_cnn_final (Task 2)"]
lu.show_markdown(
    f"At severities 1–3, our final network reads **{ours_c.corruption_mean_1_3:.3f}** of the corrupted test "
    f"images right on average (Task 2's final network {before_c.corruption_mean_1_3:.3f}); on the held-out "
    f"types {held_out:.3f} against {named_mean:.3f} on the named ones: robustness "
    f"**{'carries over' if held_out >= named_mean - CARRIES_OVER else 'does not carry over'}** "
    f"(a drop of {named_mean - held_out:+.3f}, the rule {CARRIES_OVER}). Its worst type is "
    f"{ours_c.worst_type_1_3} ({ours_c.corruption_worst_1_3:.3f}); clean, it reads {ours_c.clean:.3f}."
)

# %% [markdown]
# The figures each network's record keeps (`corruptions`: accuracy per type and severity):

# %%
corruption_by_model = {
    name: {
        "corruptions": document["robustness"],
        "corruption_clean_accuracy": clean[name],
        **{
            field: corruption.loc[name, field]
            for field in ("corruption_mean_1_3", "corruption_mean_1_5", "held_out_mean_1_3")
        },
        "corruption_worst_1_3": {
            corruption.loc[name, "worst_type_1_3"]: corruption.loc[name, "corruption_worst_1_3"]
        },
    }
    for name, document in lu.robustness_by_model(corruptions).items()
}
pd.DataFrame(corruption_by_model).T.drop(columns="corruptions")

# %% [markdown]
# ## What the networks look at
#
# Did augmentation move the network's attention onto the hand? Grad-CAM (`lu.grad_cam`, as in Keras'
# own example) weights the network's last feature map by the gradient of its answer's score: one
# 28×28 map per image, 1 where it looked most. Two rules read the maps of the final networks, on the
# robustness sample. **Faithful**: setting the pixels a map ranks highest to the image's mean
# (`lu.deletion_curve`) must cost more accuracy than as many random pixels; the area under each curve
# (`lu.deletion_scores`, over 0–30 % deleted) sums it up, lower being more harmful. **Stable**: an
# image's map under the mild camera (`mixed` at strength 1) should correlate with its clean map
# (`lu.map_correlation`: the mean over images of the two maps' Pearson correlation).

# %%
x_clean, y_clean = inputs.x_test[sample], inputs.y_test[sample]
x_camera = lu.perturb(x_clean, "mixed", 1.0, seed=SEED)
maps, explanation = {}, {}
for name in ("compact_cnn_final (Task 2)", "compact_cnn_augmented_final"):
    started = time.perf_counter()
    maps[name] = (lu.grad_cam(models[name], x_clean), lu.grad_cam(models[name], x_camera))
    curve = lu.deletion_curve(models[name], x_clean, y_clean, maps[name][0], seed=SEED)
    explanation[name] = {
        "method": "grad_cam",
        **lu.deletion_scores(curve),
        "stability_mixed": lu.map_correlation(*maps[name]),
        "images": len(sample),
        "seconds": time.perf_counter() - started,
    }
pd.DataFrame(explanation).T

# %% [markdown]
# The first eight images of the sample, and where each final network looked: before augmentation
# (Task 2), after it (Task 3), and after it under the mild camera (+ camera).

# %%
shown = np.arange(min(8, len(sample)))
rows = {
    "image": x_clean[shown, ..., 0],
    "Task 2": maps["compact_cnn_final (Task 2)"][0][shown],
    "Task 3": maps["compact_cnn_augmented_final"][0][shown],
    "+ camera": maps["compact_cnn_augmented_final"][1][shown],
}
titles = [lu.LETTERS[y] if tag == "image" else tag for tag in rows for y in y_clean[shown]]
lu.plot_image_grid(np.concatenate(list(rows.values())), titles, columns=len(shown))
plt.show()

# %% [markdown]
# The answer, by the two rules: a map is faithful when deleting its top 15 % of pixels costs at least
# `FAITHFUL_MARGIN` more accuracy than deleting 15 % at random.

# %%
FAITHFUL_MARGIN = 0.05
task2_maps, task3_maps = explanation["compact_cnn_final (Task 2)"], explanation["compact_cnn_augmented_final"]
faithful = {
    name: e["accuracy_15_random"] - e["accuracy_15_deleted"] >= FAITHFUL_MARGIN
    for name, e in explanation.items()
}
stable = task3_maps["stability_mixed"] > task2_maps["stability_mixed"]
lu.show_markdown(
    f"Under the mild camera, our final network's maps correlate {task3_maps['stability_mixed']:.2f} "
    f"with its clean maps after augmentation, {task2_maps['stability_mixed']:.2f} before: augmentation "
    f"made them **{'more' if stable else 'less'} stable**. Deleting the 15 % most attributed pixels "
    f"leaves {task3_maps['accuracy_15_deleted']:.3f} accuracy after augmentation "
    f"({task3_maps['accuracy_15_random']:.3f} for random pixels; deletion AUC "
    f"{task3_maps['deletion_auc']:.3f} against {task3_maps['random_deletion_auc']:.3f}) and "
    f"{task2_maps['accuracy_15_deleted']:.3f} before ({task2_maps['accuracy_15_random']:.3f}): the maps are "
    + " and ".join(
        f"{'faithful' if faithful[name] else 'NOT faithful'} {when}"
        for name, when in (("compact_cnn_final (Task 2)", "before"), ("compact_cnn_augmented_final", "after"))
    )
    + f" (by the {FAITHFUL_MARGIN:.0%} margin)."
)

# %% [markdown]
# ## Saving the models and the numbers
#
# Each network is saved into this notebook's folder (`NAME.keras`) and gets its record: the test
# scores, what its training cost, its weights and its inference rate, measured here. `train_seconds`
# and `epochs` count Task 2's training too: they are what it took to obtain the model.

# %%
trained = {
    "compact_cnn_augmented": (ours, ours_log, ours_seconds, keep.kept_epoch),
    "seed_cnn_augmented": (reference, reference_log, reference_seconds, len(reference_log)),
    "compact_cnn_augmented_final": (final, final_log, final_seconds, len(final_log)),
}
records = {}
for name, (model, log, seconds, kept_epoch) in trained.items():
    task2_record = task2_metrics["models"][name.replace("_augmented", "")]  # the network it continues
    final_fit = name == "compact_cnn_augmented_final"
    records[name] = lu.save_with_record(
        model,
        output_dir,
        name,
        test_metrics[name],
        test_images=inputs.x_test,
        seed=SEED,
        val_accuracy_random=None,
        val_accuracy_grouped=val_accuracy.get(name),  # none for the final network
        train_seconds=task2_record["train_seconds"] + seconds,
        epochs=task2_record["epochs"] + len(log),
        train_images=len(inputs.x_all) if final_fit else len(inputs.x_train),
        epochs_augmented=len(log),
        trained_on="train + validation" if final_fit else "train",
        train_seconds_augmented=seconds,
        test_families_with_errors=families_with_errors[name],
        kept_epoch_augmented=kept_epoch,
        robustness_mean_accuracy=mean_accuracy[name].to_dict(),
        **robust[name] | corruption_by_model[name],
        **({"explanation": explanation[name]} if name in explanation else {}),
    )

# %% [markdown]
# The numbers go to `metrics.json`, checked against its schema as they are written.
# `val_accuracy_random` is empty: these networks are trained on the grouped split only, and the
# final network has no validation score at all (it trained on the validation images).

# %%
lu.write_metrics(
    output_dir,
    notebook="03_augmentation",
    data_source=dataset.source,
    profile=PROFILE,
    models=records,
    split=split.summary(),
    recipe=dataclasses.asdict(recipe),  # the Task 3 recipe, augmentation included
    robustness=robustness.to_dict(orient="records"),
    robustness_images=len(sample),
    robustness_by_model=robust,  # the Task 2 networks' too
    corruption_images=len(on_test),
    corruption_by_model=corruption_by_model,  # the Task 2 networks' too
    explanation_by_model=explanation,  # the Task 2 final network's too
    test_families=len(by_family),
    missed_families=lu.missed_family_records(
        wrong_families, neighbours
    ),  # with their nearest training images
)
pd.DataFrame(records).T[
    [
        "test_accuracy",
        "test_errors",
        "val_accuracy_grouped",
        "trained_on",
        "train_seconds",
        "epochs",
        "model_file",
    ]
]

# %% [markdown]
# ## Conclusion
#
# Each claim below comes from a comparison made here, on this run's numbers. Two accuracies closer
# than `SAME_ACCURACY` count as the same: below one test image in seven thousand.

# %%
SAME_ACCURACY = 0.0001


def change(before_accuracy, after_accuracy):
    """'raises ... from A to B', 'lowers ...' or 'leaves ... at A', by the rule above."""
    if after_accuracy - before_accuracy > SAME_ACCURACY:
        return f"raises it from {before_accuracy:.4f} to {after_accuracy:.4f}"
    if before_accuracy - after_accuracy > SAME_ACCURACY:
        return f"lowers it from {before_accuracy:.4f} to {after_accuracy:.4f}"
    return f"leaves it at {after_accuracy:.4f}"


more_robust = gains.mean() > 0
validation_gap = lu.describe_gap(val_accuracy["compact_cnn_augmented"], after["accuracy"])
more_robust

# %%
data_words = "On the real data" if dataset.is_real else "On the SYNTHETIC STAND-IN (not the real data)"
lu.show_markdown(
    f"{data_words}, {len(ours_log)} further epochs on augmented batches ({ours_seconds:.0f} s) take our "
    f"network, trained on the split's training side, to a test accuracy of {after['accuracy']:.4f}: "
    f"augmentation {change(before['accuracy'], after['accuracy'])}. Its grouped validation accuracy, "
    f"{val_accuracy['compact_cnn_augmented']:.4f}, is {validation_gap}. The same recipe on all "
    f"{len(inputs.x_all):,} training images {change(final_before['accuracy'], final_after['accuracy'])} for "
    f"our final network: **{final_after['accuracy']:.4f}**, {final_after['errors']} of "
    f"{len(inputs.y_test):,} test images wrong, in {counts['compact_cnn_augmented_final']} of the "
    f"{len(by_family)} test families. Under perturbation augmentation "
    f"{'adds' if more_robust else 'takes away'} {abs(gains.mean()):.3f} of mean accuracy, most under "
    f"{gains.idxmax()}{': the real change it makes is robustness' if more_robust else ''}."
)
