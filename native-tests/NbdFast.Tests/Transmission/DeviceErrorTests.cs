using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>A device failure fails only its request, with the right wire error and no stray data.</summary>
public class DeviceErrorTests
{
    /// <summary>Reads at or past <see cref="BadOffset"/> fail with EIO; writes there fail with an ENOSPC IOException.</summary>
    private sealed class FailingDevice : IBlockDevice
    {
        public const long BadOffset = 512 * 1024;
        private readonly MemoryDevice _inner = new(1024 * 1024);

        public long Size => _inner.Size;
        public BlockDeviceCapabilities Capabilities => BlockDeviceCapabilities.Flush;
        public BlockSizeConstraints BlockSize => _inner.BlockSize;

        public ValueTask ReadAsync(long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
            offset + destination.Length > BadOffset
                ? throw new BlockDeviceException(NbdError.IO, "medium error")
                : _inner.ReadAsync(offset, destination, cancellationToken);

        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> source, WriteFlags flags, CancellationToken cancellationToken = default) =>
            offset + source.Length > BadOffset
                ? throw new IOException("No space left on device", 28)
                : _inner.WriteAsync(offset, source, flags, cancellationToken);

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => throw new InvalidOperationException("flush exploded");

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task FailedReadIsAnErrorWithoutData(ReplyStyle style)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new FailingDevice(), style);
        await server.Client.SendRequestAsync(NbdCommand.Read, FailingDevice.BadOffset, 4096, cookie: 1);
        // A simple reply with an error carries no data: the next bytes are the next reply's header.
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((1ul, NbdError.IO), (reply.Cookie, reply.Error));
        Assert.True(reply.IsDone);
        Assert.Equal(style == ReplyStyle.Simple, reply.IsSimple);
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task FailedWriteMapsErrnoToTheWireError()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new FailingDevice());
        await server.Client.SendWriteAsync(FailingDevice.BadOffset, new byte[4096], cookie: 2);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((2ul, NbdError.NoSpace), (reply.Cookie, reply.Error));
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task UnexpectedDeviceExceptionIsEio()
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new FailingDevice(), ReplyStyle.Structured);
        await server.Client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 3);
        RawReply reply = await server.Client.ReadReplyAsync();
        Assert.Equal((3ul, NbdError.IO), (reply.Cookie, reply.Error));
        Assert.DoesNotContain("exploded", reply.ErrorMessage); // internal exception text is not leaked
        await RequestErrorTests.AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }
}
