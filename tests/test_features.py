"""Finalized feature levels: Kafka's UpdateFeatures rules, validate_only, and durability."""

from __future__ import annotations

import pytest

from kafkacompat.features import (
    FEATURES_FILE,
    FeatureUpdate,
    FinalizedFeatures,
    UpgradeType,
    metadata_changed_between,
)
from kafkacompat.protocol.errors import ErrorCode, KafkaError

MV = "metadata.version"
SV = "share.version"
TV = "transaction.version"


def _refusal(features: FinalizedFeatures, *updates: FeatureUpdate) -> str:
    with pytest.raises(KafkaError) as info:
        features.update(updates, validate_only=False)
    assert info.value.code == ErrorCode.INVALID_UPDATE_VERSION
    return info.value.message


def test_a_new_cluster_finalizes_the_newest_metadata_version_at_epoch_zero(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    assert (features.epoch, features.levels) == (0, {MV: 21, "group.version": 1, SV: 1, TV: 2})
    assert not (tmp_path / FEATURES_FILE).exists()


def test_applied_updates_bump_the_epoch_and_survive_reopening(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    features.update([FeatureUpdate(MV, 19, UpgradeType.SAFE_DOWNGRADE)], validate_only=False)
    features.update([FeatureUpdate(MV, 20, UpgradeType.UPGRADE)], validate_only=False)
    reopened = FinalizedFeatures(tmp_path, node_id=1)
    assert (reopened.epoch, reopened.levels) == (2, {MV: 20, "group.version": 1, SV: 1, TV: 2})


def test_validate_only_and_an_empty_request_change_nothing(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    features.update([FeatureUpdate(MV, 18, UpgradeType.SAFE_DOWNGRADE)], validate_only=True)
    features.update([], validate_only=False)
    assert (features.epoch, features.levels) == (0, {MV: 21, "group.version": 1, SV: 1, TV: 2})
    assert not (tmp_path / FEATURES_FILE).exists()


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (FeatureUpdate(MV, 20, UpgradeType.UNKNOWN), "The controller does not support the given upgrade type."),
        (FeatureUpdate(MV, -1, UpgradeType.UPGRADE), "A feature version cannot be less than 0."),
        (FeatureUpdate(MV, 22, UpgradeType.UPGRADE), "Local controller 1 only supports versions 1-21"),
        (FeatureUpdate("group.version", 2, UpgradeType.UPGRADE), "Local controller 1 only supports versions 0-1"),
        (FeatureUpdate(TV, 3, UpgradeType.UPGRADE), "Local controller 1 only supports versions 0-2"),
        (FeatureUpdate("kraft.version", 1, UpgradeType.UPGRADE), "Local controller 1 does not support this feature."),
        (FeatureUpdate(MV, 20, UpgradeType.UPGRADE), "Can't downgrade the version of this feature without setting"
                                                     " the upgrade type to either safe or unsafe downgrade."),
        (FeatureUpdate("no.such.feature", 0, UpgradeType.UPGRADE), "Feature no.such.feature not found."),
    ],
)
def test_refusals_name_the_feature_and_kafkas_reason(tmp_path, update, reason):
    message = _refusal(FinalizedFeatures(tmp_path, node_id=1), update)
    assert message == f"Invalid update version {update.max_version_level} for feature {update.feature}. {reason}"


def test_an_upgrade_type_that_says_downgrade_cannot_raise_a_level(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    features.update([FeatureUpdate(MV, 20, UpgradeType.SAFE_DOWNGRADE)], validate_only=False)
    assert _refusal(features, FeatureUpdate(MV, 21, UpgradeType.SAFE_DOWNGRADE)).endswith(
        "Can't downgrade to a newer version.")


@pytest.mark.parametrize(
    ("level", "upgrade_type", "reason"),
    [
        (16, UpgradeType.SAFE_DOWNGRADE,
         "Refusing to perform the requested downgrade because it might delete metadata information."),
        (16, UpgradeType.UNSAFE_DOWNGRADE, "Unsafe metadata downgrade is not supported in this version."),
        (3, UpgradeType.SAFE_DOWNGRADE, "Unable to set a metadata.version less than 3.3-IV0"),
    ],
)
def test_metadata_version_downgrades_follow_kafkas_rules(tmp_path, level, upgrade_type, reason):
    message = _refusal(FinalizedFeatures(tmp_path, node_id=1), FeatureUpdate(MV, level, upgrade_type))
    assert message == f"Invalid metadata.version {level}. {reason}"


def test_one_bad_update_fails_the_whole_request(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    _refusal(features, FeatureUpdate(MV, 20, UpgradeType.SAFE_DOWNGRADE),
             FeatureUpdate("kraft.version", 1, UpgradeType.UPGRADE))
    assert (features.epoch, features.levels) == (0, {MV: 21, "group.version": 1, SV: 1, TV: 2})


def test_disabled_features_may_be_set_to_zero(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    features.update([FeatureUpdate("kraft.version", 0, UpgradeType.UPGRADE)], validate_only=False)
    assert (features.epoch, features.levels) == (1, {MV: 21, "group.version": 1, SV: 1, TV: 2})


def test_group_version_may_be_downgraded_to_turn_the_consumer_protocol_off(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    features.update([FeatureUpdate("group.version", 0, UpgradeType.SAFE_DOWNGRADE)], validate_only=False)
    assert FinalizedFeatures(tmp_path, node_id=1).levels == {MV: 21, SV: 1, TV: 2}


def test_metadata_changes_are_those_of_the_levels_between():
    assert not metadata_changed_between(21, 17)  # 18..21 kept the format
    assert metadata_changed_between(21, 16)  # 17 changed it
    assert metadata_changed_between(3, 2) and not metadata_changed_between(2, 1)  # only the upper end counts


def test_share_groups_are_finalized_in_a_new_cluster_and_may_be_turned_off(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    features.update([FeatureUpdate(SV, 0, UpgradeType.SAFE_DOWNGRADE)], validate_only=False)
    assert FinalizedFeatures(tmp_path, node_id=1).levels == {MV: 21, "group.version": 1, TV: 2}
    assert "only supports versions 0-1" in _refusal(features, FeatureUpdate(SV, 2, UpgradeType.UPGRADE))
    features.update([FeatureUpdate(SV, 1, UpgradeType.UPGRADE)], validate_only=False)
    assert FinalizedFeatures(tmp_path, node_id=1).levels == {MV: 21, "group.version": 1, SV: 1, TV: 2}


def test_transactions_v2_are_finalized_in_a_new_cluster_and_may_be_lowered(tmp_path):
    features = FinalizedFeatures(tmp_path, node_id=1)
    assert features.levels[TV] == 2
    assert "without setting the upgrade type" in _refusal(features, FeatureUpdate(TV, 1, UpgradeType.UPGRADE))
    features.update([FeatureUpdate(TV, 1, UpgradeType.SAFE_DOWNGRADE)], validate_only=False)
    assert FinalizedFeatures(tmp_path, node_id=1).levels[TV] == 1
    features.update([FeatureUpdate(TV, 2, UpgradeType.UPGRADE)], validate_only=False)
    assert FinalizedFeatures(tmp_path, node_id=1).levels[TV] == 2
