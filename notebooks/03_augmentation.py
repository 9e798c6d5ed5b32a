# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
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
OUTPUT_DIR = "../reports/03_augmentation"  # where models and metrics.json go
TASK2_DIR = "../reports/02_cnn"  # the Task 2 run whose models are trained further here
PROFILE = "full"  # {"quick", "full"}: set by the report runner
SEED = 0  # [0, 4294967295]
SPLIT_KIND = "grouped"  # {"grouped", "random"}
VALIDATION_FRACTION = 0.3  # (0.0, 1.0)
SPLIT_SEED = 43  # [0, 4294967295]
FAMILY_THRESHOLD = 0.97  # (0.0, 1.0]
EPOCHS = 16  # [1, 1000]: further epochs of our network on augmented batches; the reference gets the same seconds
BATCH_SIZE = 128  # [1, 65536]
LEARNING_RATE = 2e-3  # (0.0, 1.0]
EMA_MOMENTUM = 0.998  # [0.0, 1.0): keep a moving average of the weights over about 1/(1 - EMA_MOMENTUM) steps; 0: the last
STATISTICS_IMAGES = 2048  # [0, inf): clean training images for the batch-norm statistics of each epoch; 0: training's own
KEEP_TOLERANCE = None  # [0.0, 1.0]: keep the last epoch unless this far below the best in validation; None: 2 standard errors
ROTATION_DEGREES = 12.0  # [0.0, 180.0]: our augmentation; the reference keeps its own (10°, shift 0.05, shear 0.1, zoom 0.075)
SHIFT = 0.1  # [0.0, 1.0)
ZOOM = 0.12  # [0.0, 1.0)
SHEAR = 0.1  # [0.0, 1.0)
CONTRAST = 0.3  # [0.0, 1.0)
BRIGHTNESS = 0.2  # [0.0, 1.0]
BLUR = 0.75  # [0.0, 10.0]: largest Gaussian blur sigma, pixels (a sigma per image, the lens)
NOISE = 0.08  # [0.0, 1.0]: largest Gaussian noise stddev of the 0-1 range (a stddev per image, the sensor)
ROBUSTNESS_IMAGES = 1000  # [1, inf): test images (a seeded random sample) used in the robustness study; None: all
TRAIN_LIMIT = None  # [1, inf): use only this many training images (quick runs); None: all

# %% [markdown]
# ## Data, split and the Task 2 networks
#
# The same data and grouped split as before; the two networks trained in Task 2 are loaded from
# its run folder (run notebook 02 first): both networks trained on the split's training side, and
# our final network trained on every training image.

# %%
import dataclasses
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from livelossplot import PlotLossesKeras

import labutils as lu

output_dir, dataset, split, data = lu.start_task(
    OUTPUT_DIR, seed=SEED, data_dir=DATA_DIR, split_kind=SPLIT_KIND, validation_fraction=VALIDATION_FRACTION,
    split_seed=SPLIT_SEED, family_threshold=FAMILY_THRESHOLD, train_limit=TRAIN_LIMIT,
)

# %%
task2_dir = Path(TASK2_DIR)
task2_metrics = lu.read_task_metrics(task2_dir, "02_cnn", dataset.source)  # checked: that notebook's, on these data
task2 = {name: lu.load_model(task2_dir / record["model_file"]) for name, record in task2_metrics["models"].items()}
pd.DataFrame(task2_metrics["models"]).T[["test_accuracy", "test_errors", "train_seconds", "epochs"]]

# %% [markdown]
# ## The augmentation
#
# Every image of every batch gets a new random change, inside the `tf.data` pipeline: one affine
# map combining rotation, shift, zoom and shear, applied in a single bilinear resampling
# (`lu.RandomAffine`; chaining Keras' RandomRotation, RandomTranslation, RandomZoom and
# RandomShear would interpolate a 28x28 image four times and blur it); then what a camera adds:
# a Gaussian blur of a random sigma up to `BLUR` pixels (`lu.RandomGaussianBlur`, the lens),
# Keras' RandomContrast and RandomBrightness layers (the exposure) and Gaussian noise of a random
# standard deviation up to `NOISE` (`lu.RandomGaussianNoise`, the sensor); a factor of 0 leaves
# its change out. The hand is never mirrored: a mirrored sign is made with the other hand and can
# read as another letter. Below, one training image of each of six letters (left column) and
# eleven random augmentations of it.

# %%
camera = lu.Augmentation(rotation_degrees=ROTATION_DEGREES, shift=SHIFT, zoom=ZOOM, shear=SHEAR, contrast=CONTRAST,
                         brightness=BRIGHTNESS, blur=BLUR, noise=NOISE)
augment = camera.pipeline(SEED)
examples = [int(np.flatnonzero(data.y_train == index)[0]) for index in np.unique(data.y_train)[:6]]
originals = np.repeat(data.x_train[examples], 12, axis=0)
augmented = np.array(augment(originals, training=True))  # a writable copy
augmented[::12] = data.x_train[examples]
titles = [lu.LETTERS[data.y_train[i]] if k == 0 else "" for i in examples for k in range(12)]
lu.plot_image_grid(augmented[..., 0], titles, columns=12)
plt.show()

# %% [markdown]
# ## Training our network further on augmented batches
#
# The Task 2 network continues from its weights with a fresh warm-up + cosine schedule at a
# lower peak. The optimizer also keeps an exponential moving average of the weights (Polyak
# averaging, `use_ema=True`: about the last 1/(1 − `EMA_MOMENTUM`) steps); between epochs the
# network holds that average (`lu.SwapAverageWeights`), so the validation scores, and the
# network keeps, the averaged weights. Even near the end of the schedule each epoch still moves
# the weights enough to turn a borderline family of near-identical images right or wrong; the
# average smooths those last steps out.
#
# The batch-norm layers need one more step. During training their moving statistics follow the
# augmented batches and the raw weights of the last few steps, neither of which is what the
# network meets afterwards: clean images and the averaged weights. So at the end of every epoch
# the statistics are recomputed, layer by layer, for the averaged weights on `STATISTICS_IMAGES`
# clean training images (`lu.RecomputeBatchNormStatistics`; the training statistics come back
# before the next epoch trains on). On the grouped validation this made the per-epoch scores
# steadier and the log-loss lower (`docs/task3.md`, "Batch-norm statistics").
#
# The schedule runs to its end (stopping early would cut off the low-learning-rate tail) and its
# last epoch is kept — unless its grouped validation accuracy falls more than `KEEP_TOLERANCE`
# below the best epoch's, in which case the best epoch's weights come back (`lu.FinalOrBest`; by
# default the tolerance is two standard errors of that accuracy).
# Picking the epoch with the very best validation figure would pick noise: the validation set
# holds a few hundred families of near-identical images, so one family more or less moves its
# accuracy by tenths of a point.

# %%
recipe = lu.Task3Recipe(epochs=EPOCHS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE, ema_momentum=EMA_MOMENTUM,
                        statistics_images=STATISTICS_IMAGES, augmentation=camera)


def continue_ours(task2_model, training_rows):
    """A copy of a Task 2 network, compiled with the recipe's AdamW + a fresh warm-up/cosine schedule over its
    epochs of `training_rows` images, averaging its weights if `EMA_MOMENTUM` > 0."""
    model = keras.models.clone_model(task2_model)
    model.set_weights(task2_model.get_weights())
    model.compile(optimizer=recipe.optimizer(training_rows), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# %% [markdown]
# The Task 2 network trained on the split's training side continues here, its validation side scored after every epoch:

# %%
ours = continue_ours(task2["compact_cnn"], len(data.x_train))
keep = lu.FinalOrBest("val_accuracy", tolerance=KEEP_TOLERANCE,  # None: two standard errors over the families
                      families=split.validation_families if KEEP_TOLERANCE is None else None)
ours_history = ours.fit(
    lu.training_dataset(data.x_train, data.y_train, batch_size=recipe.batch_size, seed=SEED, augmentation=augment),
    validation_data=(data.x_val, data.y_val), validation_batch_size=512, epochs=recipe.epochs, verbose=2,
    # the recipe's callbacks first: those after them see the averaged weights
    callbacks=[*recipe.callbacks(data.x_train, SEED), lu.EpochClock(), keep, PlotLossesKeras()],
)

# %%
ours_log = lu.history_frame(ours_history)
ours_seconds = float(ours_log["seconds"].iloc[-1])
lu.show_markdown(keep.describe())
ours_log.round(4)

# %% [markdown]
# ## The reference network, further trained with its own augmentation
#
# As in the seed report: Nadam, batch 128, its geometric augmentation only; it gets the seconds
# our network used, validation included (checked after every batch, as in Task 2).

# %%
reference = keras.models.clone_model(task2["seed_cnn"])
reference.set_weights(task2["seed_cnn"].get_weights())
reference_recipe = lu.ReferenceRecipe()
reference.compile(optimizer=reference_recipe.optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
reference_history = reference.fit(
    lu.training_dataset(data.x_train, data.y_train, batch_size=reference_recipe.batch_size, seed=SEED,
                        augmentation=reference_recipe.augmentation(SEED)),
    validation_data=(data.x_val, data.y_val),
    validation_batch_size=512,
    epochs=10 * recipe.epochs,
    verbose=2,
    callbacks=[lu.EpochClock(), budget := lu.TimeBudget(ours_seconds, per_batch=True), PlotLossesKeras()],
)

# %%
reference_log = lu.history_frame(reference_history)
reference_seconds = float(reference_log["seconds"].iloc[-1])
cut_short = (budget.steps_done, budget.steps_per_epoch) if budget.cut_short else None
lu.show_markdown(lu.describe_same_seconds(reference_seconds, len(reference_log), ours_seconds=ours_seconds,
                                          ours_epochs=len(ours_log), cut_short=cut_short, further=True) + ".")

# %% [markdown]
# ## The final network: augmentation on every training image
#
# As in Task 2, the recipe chosen on the grouped split — this augmentation, this schedule,
# stopped at the epoch `lu.FinalOrBest` kept above — is applied once more to every labelled
# training image, starting from Task 2's final network (which was trained on all of them too).
# This network has no validation score of its own; the split run above is its validation. The
# random generators are reseeded first, here too: the final network depends on `SEED` and the
# recipe alone, not on what the cells above happened to draw.

# %%
keras.utils.set_random_seed(SEED)
final = continue_ours(task2["compact_cnn_final"], len(data.x_all))
final_history = final.fit(
    lu.training_dataset(data.x_all, data.y_all, batch_size=recipe.batch_size, seed=SEED,
                        augmentation=recipe.augmentation.pipeline(SEED)),
    epochs=keep.kept_epoch,
    verbose=2,
    callbacks=[*recipe.callbacks(data.x_all, SEED), lu.EpochClock(), PlotLossesKeras()],
)

# %%
final_log = lu.history_frame(final_history)
final_seconds = float(final_log["seconds"].iloc[-1])
lu.show_markdown(f"{len(final_log)} augmented epochs on {len(data.x_all):,} images took {final_seconds:.0f} s.")
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
probabilities = {name: model.predict(data.x_test, batch_size=512, verbose=0) for name, model in models.items()}
test_metrics = {name: lu.classification_metrics(data.y_test, p) for name, p in probabilities.items()}
val_accuracy = {name: float(model.evaluate(data.x_val, data.y_val, batch_size=512, verbose=0)[1])
                for name, model in models.items() if "final" not in name}  # the final networks trained on the validation images

# %%
results = pd.DataFrame(test_metrics).T
results["grouped val accuracy"] = pd.Series(val_accuracy)
results.loc["seed report, Task 3 (published)"] = {"accuracy": lu.SEED_REPORT.task3_accuracy,
                                                  "log_loss": lu.SEED_REPORT.task3_log_loss}
results.round(4)

# %%
before, after = test_metrics["compact_cnn (Task 2)"], test_metrics["compact_cnn_augmented"]
final_before, final_after = test_metrics["compact_cnn_final (Task 2)"], test_metrics["compact_cnn_augmented_final"]
lu.show_markdown(
    f"Trained on the split's training side, augmentation takes our network from {before['accuracy']:.4f} to "
    f"{after['accuracy']:.4f} test accuracy ({before['errors']} → {after['errors']} errors, log-loss "
    f"{before['log_loss']:.3f} → {after['log_loss']:.3f}); the reference network goes from "
    f"{test_metrics['seed_cnn (Task 2)']['accuracy']:.4f} to {test_metrics['seed_cnn_augmented']['accuracy']:.4f} in the same "
    f"time (the seed report: {lu.SEED_REPORT.task2_accuracy:.4f} → {lu.SEED_REPORT.task3_accuracy:.4f} after 50 "
    f"more epochs). Our final network, trained on every training image, goes from {final_before['accuracy']:.4f} to "
    f"**{final_after['accuracy']:.4f}** ({final_before['errors']} → {final_after['errors']} errors)."
)

# %% [markdown]
# ## Where the augmented network still errs
#
# Per-letter scores of the final augmented network (worst F1 first), its confusion matrix and the
# misclassified test images.

# %%
predicted = probabilities["compact_cnn_augmented_final"].argmax(axis=1)
lu.per_letter_report(data.y_test, predicted).sort_values("f1").head(8).round(4)

# %%
lu.plot_confusion_matrix(data.y_test, predicted)
plt.show()

# %%
ax = lu.plot_misclassified(dataset.x_test, data.y_test, predicted, limit=24)
plt.show() if ax is not None else lu.show_markdown("No test image is misclassified.")

# %% [markdown]
# ## Errors by family of test photographs
#
# As in Task 2, the test images are grouped into families of near-copies of one photograph; the
# table lists the families the final augmented network still gets wrong, most errors first.

# %%
test_families = lu.near_duplicate_families(dataset.x_test, data.y_test, threshold=FAMILY_THRESHOLD)
family_tables = {name: lu.errors_by_family(data.y_test, p.argmax(axis=1), test_families) for name, p in probabilities.items()}
families_with_errors = {name: int((table["errors"] > 0).sum()) for name, table in family_tables.items()}
by_family = family_tables["compact_cnn_augmented_final"]
wrong_families = by_family[by_family["errors"] > 0]
wrong_families.head(10)

# %%
lu.show_markdown(lu.describe_test_families(by_family, families_with_errors))

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
neighbours = lu.family_neighbours(data.x_test, data.y_test, test_families, data.x_all, data.y_all)
missed_neighbours = neighbours.loc[wrong_families.index]
elsewhere = missed_neighbours[missed_neighbours["nearest_letter"] != missed_neighbours["letter"]]  # nearest: another letter
missed_neighbours[["letter", "images", "nearest_letter", "nearest_similarity", "own_letter_similarity"]].head(10).round(3)

# %%
if len(missed_neighbours):
    lu.plot_family_neighbours(data.x_test, data.x_all, missed_neighbours.head(8))
    plt.show()
else:
    lu.show_markdown("The final augmented network gets no test family wrong: nothing to show.")

# %%
task2_missed = family_tables["compact_cnn_final (Task 2)"]
lu.show_markdown(lu.describe_missed_families(neighbours, task2_missed.index[task2_missed["errors"] > 0], wrong_families.index))

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
if ROBUSTNESS_IMAGES is None or ROBUSTNESS_IMAGES >= len(data.x_test):
    sample = np.arange(len(data.x_test))
else:
    sample = np.sort(np.random.default_rng(SEED).choice(len(data.x_test), ROBUSTNESS_IMAGES, replace=False))
robustness_x, robustness_y = data.x_test[sample], data.y_test[sample]
compared = {name: models[name] for name in ("compact_cnn (Task 2)", "compact_cnn_augmented", "compact_cnn_final (Task 2)",
                                           "compact_cnn_augmented_final", "seed_cnn_augmented")}
robustness = lu.robustness_table(
    {name: (lambda images, model=model: model.predict(images, batch_size=512, verbose=0)) for name, model in compared.items()},
    robustness_x, robustness_y, seed=SEED,
)
lu.plot_robustness(robustness)
plt.show()

# %%
robust = lu.robustness_by_model(robustness)  # per model: {perturbation: {strength: accuracy}}, for metrics.json
mean_accuracy = robustness[robustness.strength > 0].pivot_table(index="perturbation", columns="model", values="accuracy")
mean_accuracy["gain from augmentation"] = (mean_accuracy["compact_cnn_augmented_final"]
                                          - mean_accuracy["compact_cnn_final (Task 2)"])
mean_accuracy.round(4)

# %%
gains = mean_accuracy["gain from augmentation"]
imitated = [name for name, strength in (("rotation", ROTATION_DEGREES), ("shift", SHIFT), ("scale", ZOOM),
                                         ("brightness_contrast", CONTRAST + BRIGHTNESS), ("blur", BLUR), ("noise", NOISE),
                                         ("mixed", NOISE and BLUR)) if strength]
lu.show_markdown(lu.describe_robustness_gains(mean_accuracy, before="compact_cnn_final (Task 2)",
                                              after="compact_cnn_augmented_final", imitated=imitated))

# %% [markdown]
# ## Saving the models and the numbers
#
# Each network is saved into this notebook's folder (`NAME.keras`) and gets its record: the test
# scores, what its training cost, its weights and its inference rate, measured here.

# %%
records = {}
trained = (("compact_cnn_augmented", ours, ours_log, ours_seconds), ("seed_cnn_augmented", reference, reference_log,
           reference_seconds), ("compact_cnn_augmented_final", final, final_log, final_seconds))
for name, model, log, seconds in trained:  # each continues the Task 2 network of its name without "_augmented"
    task2_record, final_fit = task2_metrics["models"][name.replace("_augmented", "")], name == "compact_cnn_augmented_final"
    records[name] = lu.save_with_record(
        model, output_dir, name, test_metrics[name], test_images=data.x_test, seed=SEED, val_accuracy_random=None,
        val_accuracy_grouped=val_accuracy.get(name),  # none for the final network: it trained on the validation images
        train_seconds=task2_record["train_seconds"] + seconds, epochs=task2_record["epochs"] + len(log),
        train_images=len(data.x_all) if final_fit else len(data.x_train), epochs_augmented=len(log),
        trained_on="train + validation" if final_fit else "train", train_seconds_augmented=seconds,
        test_families_with_errors=families_with_errors[name],
        kept_epoch_augmented=keep.kept_epoch if name == "compact_cnn_augmented" else len(log),
        robustness_mean_accuracy=mean_accuracy[name].to_dict(), **robust[name],
    )

# %% [markdown]
# The numbers go to `metrics.json`, checked against its schema as they are written. `train_seconds`
# and `epochs` count Task 2's training too: they are what it took to obtain the model.
# `val_accuracy_random` is empty: these networks are trained on the grouped split only, and the
# final network has no validation score at all (it trained on the validation images).

# %%
lu.write_metrics(
    output_dir, notebook="03_augmentation", data_source=dataset.source, profile=PROFILE, models=records,
    split=split.summary(),
    recipe=dataclasses.asdict(recipe),  # the Task 3 recipe, augmentation included
    robustness=robustness.to_dict(orient="records"), robustness_images=len(sample),
    robustness_by_model=robust,  # the Task 2 networks' too
    test_families=len(by_family),
    missed_families=lu.missed_family_records(wrong_families, neighbours),  # with their nearest training images
)
pd.DataFrame(records).T[["test_accuracy", "test_errors", "val_accuracy_grouped", "trained_on", "train_seconds", "epochs",
                         "model_file"]]

# %% [markdown]
# ## Conclusion

# %%
lu.show_markdown(lu.describe_augmentation_conclusion(
    real_data=dataset.is_real,
    split_run={"epochs": len(ours_log), "seconds": ours_seconds, "before": before["accuracy"], "after": after["accuracy"],
               "val_accuracy": val_accuracy["compact_cnn_augmented"]},
    reference_accuracy=test_metrics["seed_cnn_augmented"]["accuracy"],
    published_accuracy=lu.SEED_REPORT.task3_accuracy,
    final_run={"images": len(data.x_all), "epochs": len(final_log), "seconds": final_seconds,
               "accuracy": final_after["accuracy"], "errors": final_after["errors"]},
    test_images=len(data.y_test), test_families=len(by_family),
    families_with_errors=families_with_errors["compact_cnn_augmented_final"],
    families_nearest_elsewhere=len(elsewhere),
    mean_gain=mean_accuracy["gain from augmentation"].mean(), largest_gain=gains.idxmax(),
))
