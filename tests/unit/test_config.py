import dataclasses
import tomllib

import pytest

from streamrec.infra.core.config import (
    Config,
    config_from_options,
    load_config,
    render_toml,
    section_options,
)
from streamrec.infra.core.errors import StreamrecError


def test_defaults_use_the_embedded_services():
    config = load_config(environ={})
    assert not config.kafka_external and not config.redis_external
    assert config.kafka_bootstrap == "127.0.0.1:19092"
    assert config.redis_url == "redis://127.0.0.1:16379/0"
    assert config.examples_dir == config.state_dir / "examples"


def test_toml_file_overrides_defaults_and_environment_overrides_the_file(tmp_path):
    path = tmp_path / "streamrec.toml"
    path.write_text("[serving]\nport = 6000\nmax_k = 50\n[training]\nlearning_rate = 0.5\n")
    config = load_config(path, environ={"STREAMREC_SERVING_PORT": "7000"})
    assert config.serving.port == 7000
    assert config.serving.max_k == 50
    assert config.training.learning_rate == 0.5


def test_config_file_may_come_from_the_environment(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[kafka]\nevents_topic = "clicks"\n')
    assert load_config(environ={"STREAMREC_CONFIG": str(path)}).kafka.events_topic == "clicks"


def test_setting_an_address_makes_the_service_external():
    config = load_config(
        environ={
            "STREAMREC_KAFKA_BOOTSTRAP": "kafka:9092",
            "STREAMREC_REDIS_URL": "redis://r:6379/1",
        }
    )
    assert config.kafka_external and config.kafka_bootstrap == "kafka:9092"
    assert config.redis_external and config.redis_url == "redis://r:6379/1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[serving\nport = 1", "not valid TOML"),
        ("[nope]\nx = 1", "unknown config section 'nope'"),
        ("[serving]\nprot = 1", "unknown key 'serving.prot'"),
        ('[serving]\nport = "many"', "serving.port='many' is not a valid int"),
        ("[serving]\nport = 1.5", "not a valid int"),
        ("serving = 3", "must be a [section] table"),
    ],
)
def test_malformed_config_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(StreamrecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path, environ={})


def test_malformed_environment_value_names_the_variable_key():
    with pytest.raises(StreamrecError, match=r"training\.epochs"):
        load_config(environ={"STREAMREC_TRAINING_EPOCHS": "lots"})


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(StreamrecError, match="does not exist"):
        load_config(tmp_path / "absent.toml", environ={})


def test_rendered_config_loads_back_to_the_same_configuration(tmp_path):
    original = load_config(
        environ={"STREAMREC_SERVING_PORT": "6123", "STREAMREC_REDIS_KEY_PREFIX": 'a"b'}
    )
    path = tmp_path / "round.toml"
    path.write_text(render_toml(original))
    tomllib.loads(path.read_text())
    assert load_config(path, environ={}) == original
    assert isinstance(original, Config)


def test_sections_with_underscores_take_environment_overrides():
    config = load_config(
        environ={
            "STREAMREC_RESULT_CACHE_TYPE": "none",
            "STREAMREC_RESULT_CACHE_TTL_SECONDS": "5",
            "STREAMREC_OFFLINE_EXAMPLES_PATH": "/data/examples",
        }
    )
    assert config.result_cache.type == "none" and config.result_cache.ttl_seconds == 5
    assert str(config.examples_dir) == "/data/examples"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"STREAMREC_RESULT_CACHE_TYPE": "memcached"},
            "result_cache.type='memcached' is not one of 'redis', 'none'",
        ),
        (
            {"STREAMREC_REDIS_MODE": "cluster", "STREAMREC_REDIS_MIN_REPLICA_ACKS": "1"},
            "[redis] min_replica_acks is not available in cluster mode",
        ),
        (
            {"STREAMREC_REDIS_MIN_REPLICA_ACKS": "-1"},
            "[redis] min_replica_acks must be 0 or more",
        ),
        (
            {"STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "[kafka] security_protocol SASL_SSL needs sasl_mechanism, sasl_username",
        ),
        (
            {"STREAMREC_KAFKA_SASL_MECHANISM": "PLAIN"},
            "does not use SASL (use SASL_SSL or SASL_PLAINTEXT)",
        ),
        (
            {
                "STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "STREAMREC_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            },
            "OAUTHBEARER needs sasl_oauth_token_url, sasl_oauth_client_id and sasl_oauth_client",
        ),
        (
            {"STREAMREC_KAFKA_SSL_CERTFILE": "client.pem"},
            "a client certificate is set but security_protocol PLAINTEXT does not use TLS",
        ),
        (
            {"STREAMREC_KAFKA_SECURITY_PROTOCOL": "SSL", "STREAMREC_KAFKA_SSL_KEYFILE": "k.pem"},
            "ssl_keyfile is set without ssl_certfile",
        ),
        (
            {"STREAMREC_KAFKA_REPLICATION_FACTOR": "0"},
            "partitions and replication_factor must be at least 1",
        ),
        (
            {"STREAMREC_KAFKA_MIN_INSYNC_REPLICAS": "2"},
            "min_insync_replicas (2) must be between 0 and replication_factor (1)",
        ),
        (
            {"STREAMREC_KAFKA_DELIVERY_TIMEOUT_MS": "1000"},
            "delivery_timeout_ms (1000) must exceed request_timeout_ms (15000)",
        ),
        (
            {"STREAMREC_ONLINE_STORE_TRACKED_HISTORIES": "-1"},
            "tracked_histories must be 0 (off) or more, got -1",
        ),
        (
            {"STREAMREC_FEATURES_HISTORY_LENGTH": "100"},
            "history_length (100) must be 1 or more and at most online_history_length (50)",
        ),
        (
            {"STREAMREC_TRAINING_HEADS": "3"},
            "embedding_dim (64) a multiple of heads",
        ),
        ({"STREAMREC_TRAINING_DROPOUT": "1"}, "dropout must be in [0, 1), got 1.0"),
        (
            {"STREAMREC_TRAINING_VALIDATION_FRACTION": "0"},
            "validation_fraction must be in (0, 1) and patience 0 or more",
        ),
        (
            {"STREAMREC_TRAINING_POPULARITY_PRIOR_WINDOW": "30d"},
            "training.popularity_prior_window='30d' is not one of features.popularity_windows",
        ),
        (
            {"STREAMREC_TRAINING_POPULARITY_PRIOR_DEPTH": "0"},
            "popularity_prior_depth must be 1 or more, got 0",
        ),
        (
            {"STREAMREC_TRAINING_NEIGHBOURS_PER_ITEM": "-1"},
            "neighbours_per_item must be 0 (off) or more, got -1",
        ),
        (
            {"STREAMREC_TRAINING_SOFTMAX": "hierarchical"},
            "training.softmax='hierarchical' is not one of 'auto', 'full', 'sampled'",
        ),
    ],
)
def test_invalid_choices_and_combinations_are_one_line_errors(environ, message):
    with pytest.raises(StreamrecError) as exc:
        load_config(environ=environ)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_shown_config_hides_passwords_but_the_stage_config_keeps_them():
    config = load_config(
        environ={
            "STREAMREC_REDIS_URL": "redis://:hunter2@r:6379/0",
            "STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "STREAMREC_KAFKA_SASL_MECHANISM": "PLAIN",
            "STREAMREC_KAFKA_SASL_USERNAME": "u",
            "STREAMREC_KAFKA_SASL_PASSWORD": "hunter3",
        }
    )
    shown = render_toml(config, redact_secrets=True)
    assert "hunter" not in shown and 'sasl_password = "***"' in shown
    complete = render_toml(config)
    assert "hunter2" in complete and "hunter3" in complete


def test_shown_config_hides_the_oauth_secret_and_the_client_key_password():
    config = load_config(
        environ={
            "STREAMREC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMREC_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
            "STREAMREC_KAFKA_SASL_OAUTH_TOKEN_URL": "https://idp/token",
            "STREAMREC_KAFKA_SASL_OAUTH_CLIENT_ID": "streamrec",
            "STREAMREC_KAFKA_SASL_OAUTH_CLIENT_SECRET": "hunter4",
            "STREAMREC_KAFKA_SSL_CERTFILE": "client.pem",
            "STREAMREC_KAFKA_SSL_PASSWORD": "hunter5",
        }
    )
    shown = render_toml(config, redact_secrets=True)
    assert "hunter" not in shown and 'sasl_oauth_client_secret = "***"' in shown
    assert 'ssl_password = "***"' in shown and 'sasl_oauth_client_id = "streamrec"' in shown


def test_a_section_passes_through_string_options_unchanged():
    config = load_config(environ={"STREAMREC_KAFKA_PARTITIONS": "7"})
    options = section_options(config, "kafka", bootstrap="b:1")
    assert options["kafka.partitions"] == "7" and options["kafka.bootstrap"] == "b:1"
    rebuilt = config_from_options({**options, "topic": "ignored"}, "kafka")
    assert rebuilt.kafka == dataclasses.replace(config.kafka, bootstrap="b:1")


def test_spark_settings_pass_through_from_a_toml_table_or_the_environment(tmp_path):
    path = tmp_path / "streamrec.toml"
    path.write_text(
        '[spark]\nexecutor_memory = "4g"\nexecutor_cores = 2\nui = true\n\n'
        '[spark.conf]\n"spark.kubernetes.namespace" = "recs"\n'
        '"spark.dynamicAllocation.enabled" = true\n"spark.executor.instances" = 3\n'
    )
    config = load_config(path, environ={})
    assert (config.spark.executor_memory, config.spark.executor_cores) == ("4g", 2)
    assert config.spark.ui and config.spark.conf == {
        "spark.kubernetes.namespace": "recs",
        "spark.dynamicAllocation.enabled": "true",
        "spark.executor.instances": "3",
    }
    path.write_text(render_toml(config))
    assert load_config(path, environ={}) == config
    from_env = load_config(environ={"STREAMREC_SPARK_CONF": "spark.a.b=1, spark.c=x=y"})
    assert from_env.spark.conf == {"spark.a.b": "1", "spark.c": "x=y"}


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ("spark.sql.shuffle.partitions=8", "is set by spark.shuffle_partitions; use that"),
        ("hadoop.fs.s3a.endpoint=x", "conf key 'hadoop.fs.s3a.endpoint' is not a spark.* setting"),
        ("spark.a", "expected key=value pairs separated by commas, got 'spark.a'"),
    ],
)
def test_spark_settings_that_streamrec_owns_or_cannot_read_are_refused(conf, message):
    with pytest.raises(StreamrecError) as exc:
        load_config(environ={"STREAMREC_SPARK_CONF": conf})
    assert message in str(exc.value) and "\n" not in str(exc.value)
