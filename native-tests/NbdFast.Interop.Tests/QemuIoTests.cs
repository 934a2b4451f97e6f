using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests;

/// <summary>qemu-io pattern writes and reads on RAM disks.</summary>
public sealed class QemuIoTests
{
    [Theory(Timeout = 60_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task WritableMemory_WritePatternThenReadItBack(Transport transport, Engine engine)
    {
        using NbdfastProcess server = await transport.StartAsync(engine, "--memory", "64M", "--writable");

        ToolResult write = await QemuIoAsync(server.Uri(),
            "write -P 0xa5 0 1M",
            "write -P 0x5a 3M 64k",
            "write -P 0x33 10000 777",      // unaligned
            "write -z 8M 1M",
            "read -P 0xa5 0 10000",
            "read -P 0x33 10000 777",
            "read -P 0x5a 3M 64k",
            "flush");
        Assert.True(write.Succeeded, write.Describe());
        Assert.DoesNotContain("Pattern verification failed", write.Stdout, StringComparison.Ordinal);

        // A second connection sees what the first wrote.
        ToolResult read = await QemuIoAsync(server.Uri(),
            "read -P 0xa5 0 10000",
            "read -P 0x33 10000 777",
            "read -P 0xa5 10777 1037799",
            "read -P 0 1M 2M",
            "read -P 0x5a 3M 64k",
            "read -P 0 8M 1M",
            "read -P 0 63M 1M");
        Assert.True(read.Succeeded, read.Describe());
        Assert.DoesNotContain("Pattern verification failed", read.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, await server.StopAsync());
    }

    [Theory(Timeout = 60_000)]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.Unix)]
    public async Task ReadOnlyMemory_WriteFails(Transport transport)
    {
        using NbdfastProcess server = await transport.StartAsync("--memory", "64M");

        ToolResult write = await QemuIoAsync(server.Uri(), "write -P 0xa5 0 64k");
        Assert.False(write.Succeeded, write.Describe());
        Assert.False(write.TimedOut, write.Describe());
        Assert.DoesNotContain("wrote ", write.Stdout, StringComparison.Ordinal);

        ToolResult read = await QemuIoAsync(server.Uri(), ["-r"], "read -P 0 0 64k");
        Assert.True(read.Succeeded, read.Describe());
        Assert.Equal(0, await server.StopAsync());
    }

    private static Task<ToolResult> QemuIoAsync(string uri, params string[] commands) => QemuIoAsync(uri, [], commands);

    private static Task<ToolResult> QemuIoAsync(string uri, string[] options, params string[] commands)
    {
        var arguments = new List<string> { "-f", "raw" };
        arguments.AddRange(options);
        foreach (string command in commands)
        {
            arguments.Add("-c");
            arguments.Add(command);
        }
        arguments.Add(uri);
        return ExternalTool.RunAsync("qemu-io", arguments, ExternalTool.DefaultTimeout);
    }
}
