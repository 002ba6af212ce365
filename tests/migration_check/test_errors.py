"""errors.load_json_input: every user file the tool reads as JSON fails the same way, in one line."""

import pytest

from migration_check.errors import UsageError, load_json_input


def test_reads_the_json_a_file_holds(tmp_path):
    path = tmp_path / "sizes.json"
    path.write_text('{"t": 3}', encoding="utf-8")
    assert load_json_input(path, "--table-sizes") == {"t": 3}


@pytest.mark.parametrize(("content", "message"), [
    (b"not json", "--table-sizes: {path} is not JSON (Expecting value: line 1 column 1 (char 0))"),
    (b'{"t": "\xff"}', "--table-sizes: {path} is not JSON ('utf-8' codec can't decode byte 0xff"),
])
def test_a_file_that_is_not_json_is_a_usage_error(tmp_path, content, message):
    path = tmp_path / "sizes.json"
    path.write_bytes(content)
    with pytest.raises(UsageError) as raised:
        load_json_input(path, "--table-sizes")
    assert str(raised.value).startswith(message.format(path=path))
    assert "\n" not in str(raised.value)


def test_a_file_that_cannot_be_read_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError) as raised:
        load_json_input(tmp_path / "absent.json", "--merge-reports")
    assert str(raised.value) == f"--merge-reports: cannot read {tmp_path / 'absent.json'}: No such file or directory"
