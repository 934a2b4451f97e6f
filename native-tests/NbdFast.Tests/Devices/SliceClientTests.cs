using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Devices;

/// <summary>
/// A <see cref="SliceDevice"/> cut from the middle of a file, served on both transports: nbdinfo sees the
/// slice's size; python3-libnbd writes up to its last byte, gets ENOSPC/EINVAL one byte past it (the request
/// validator's rules), zeroes, trims and reads block status inside it; afterwards the file holds the model
/// inside the slice and its original bytes everywhere else.
/// </summary>
public sealed class SliceClientTests
{
    private const int TestTimeout = 120_000;
    private const int FileSize = 8 * 1024 * 1024;
    private const int SliceOffset = 1024 * 1024 + 3 * 4096;
    private const int SliceLength = 3 * 1024 * 1024 + 5 * 4096;
    private const int EINVAL = 22, ENOSPC = 28;

    private const string Script = """
        import json, random, sys, nbd
        uri, expected_size, initial_path, model_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        h = nbd.NBD()
        h.add_meta_context("base:allocation")
        h.connect_uri(uri)
        size = h.get_size()
        assert size == expected_size, (size, expected_size)
        with open(initial_path, "rb") as f:
            model = bytearray(f.read())
        assert len(model) == size
        rng = random.Random(81)
        out = {}
        def write(offset, length):
            data = rng.randbytes(length)
            h.pwrite(data, offset)
            model[offset:offset + length] = data
        write(size - 4096, 4096)                 # the slice's last block
        write(size - 1, 1)                       # its very last byte
        write(0, 513)                            # its first bytes
        h.zero(8192, 4096)
        model[4096:12288] = bytes(8192)
        h.trim(65536, 65536)
        model[65536:131072] = bytes(65536)
        out["end_read_ok"] = h.pread(4096, size - 4096) == bytes(model[size - 4096:])
        ext = []
        h.block_status(4096, size - 4096, lambda ctx, off, entries, err: ext.extend(entries) or 0)
        out["end_extents"] = ext
        # One byte past the end, with libnbd's own range checks off so the server has to answer.
        h.set_strict_mode(0)
        def probe(name, fn):
            try:
                fn()
                out[name] = 0
            except nbd.Error as e:
                out[name] = e.errnum if e.errnum is not None else -1
        probe("write_one_past", lambda: h.pwrite(b"\xee", size))
        probe("write_across_end", lambda: h.pwrite(b"\xee" * 2, size - 1))
        probe("zero_across_end", lambda: h.zero(4096, size - 2048))
        probe("read_one_past", lambda: h.pread(1, size))
        probe("read_across_end", lambda: h.pread(2, size - 1))
        probe("trim_across_end", lambda: h.trim(4096, size - 2048))
        probe("cache_across_end", lambda: h.cache(4096, size - 2048))
        probe("block_status_past", lambda: h.block_status(1, size, lambda *a: 0))
        out["intact"] = h.pread(size, 0) == bytes(model)
        with open(model_path, "wb") as f:
            f.write(model)
        h.shutdown()
        print(json.dumps(out))
        """;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task SliceOfAFile_SizeBoundsAndUntouchedSurroundings(Transport transport)
    {
        using var temp = new TempDirectory();
        string path = temp.CreateRandomFile("disk.img", FileSize, seed: 82);
        byte[] original = await File.ReadAllBytesAsync(path);
        string initialPath = temp.File("initial.bin");
        await File.WriteAllBytesAsync(initialPath, original.AsMemory(SliceOffset, SliceLength).ToArray());
        string modelPath = temp.File("model.bin");

        var slice = new SliceDevice(FileDevice.Open(path), SliceOffset, SliceLength);
        await using (slice)
        {
            await using var server = InProcessServer.Start(slice, readOnly: false, transport: transport);

            ToolResult info = await ExternalTool.RunCheckedAsync("nbdinfo", ["--json", server.Uri]);
            using (JsonDocument document = JsonDocument.Parse(info.StdOut))
            {
                JsonElement export = document.RootElement.GetProperty("exports")[0];
                Assert.Equal(SliceLength, export.GetProperty("export-size").GetInt64());
                Assert.False(export.GetProperty("is_read_only").GetBoolean());
                Assert.True(export.GetProperty("can_trim").GetBoolean());
                Assert.True(export.GetProperty("can_zero").GetBoolean());
            }

            JsonElement output = await LibnbdPython.RunJsonAsync(Script, server.Uri, SliceLength.ToString(), initialPath, modelPath);
            await server.AssertNoErrorsAsync();

            string describe = output.GetRawText();
            Assert.True(output.GetProperty("end_read_ok").GetBoolean(), describe);
            Assert.True(output.GetProperty("intact").GetBoolean(), describe);
            Assert.True(output.GetProperty("end_extents").GetRawText() == "[4096, 0]", describe);
            Assert.True(ENOSPC == output.GetProperty("write_one_past").GetInt32(), describe);
            Assert.True(ENOSPC == output.GetProperty("write_across_end").GetInt32(), describe);
            Assert.True(ENOSPC == output.GetProperty("zero_across_end").GetInt32(), describe);
            Assert.True(EINVAL == output.GetProperty("read_one_past").GetInt32(), describe);
            Assert.True(EINVAL == output.GetProperty("read_across_end").GetInt32(), describe);
            Assert.True(EINVAL == output.GetProperty("trim_across_end").GetInt32(), describe);
            Assert.True(EINVAL == output.GetProperty("cache_across_end").GetInt32(), describe);
            Assert.True(EINVAL == output.GetProperty("block_status_past").GetInt32(), describe);
        }

        byte[] after = await File.ReadAllBytesAsync(path);
        byte[] model = await File.ReadAllBytesAsync(modelPath);
        DeviceContents.AssertEqual(original.AsSpan(0, SliceOffset), after.AsSpan(0, SliceOffset), "the file before the slice");
        DeviceContents.AssertEqual(model, after.AsSpan(SliceOffset, SliceLength), "the slice");
        DeviceContents.AssertEqual(original.AsSpan(SliceOffset + SliceLength), after.AsSpan(SliceOffset + SliceLength), "the file after the slice");
    }
}
