//! MQTT 3.1.1 and 5: message parsing over borrowed bytes.
