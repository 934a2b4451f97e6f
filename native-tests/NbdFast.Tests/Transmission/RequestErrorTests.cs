using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Transmission;

/// <summary>Requests the server must refuse with an error reply while keeping the stream in sync.</summary>
public class RequestErrorTests
{
    private const long Size = 1024 * 1024;
    private const int MiB = 1024 * 1024;

    /// <summary>Sends a small READ and asserts it succeeds: proof that framing survived what came before.</summary>
    internal static async Task AssertInSyncAsync(RawNbdClient client, ulong cookie = 0x5EC)
    {
        await client.SendRequestAsync(NbdCommand.Read, 0, 16, cookie);
        IReadOnlyList<RawReply> reply = await client.ReadFullReplyAsync(16);
        Assert.All(reply, r => Assert.Equal(cookie, r.Cookie));
        Assert.All(reply, r => Assert.Equal(NbdError.None, r.Error));
    }

    private static async Task<RawReply> ErrorReplyAsync(RawNbdClient client, ulong cookie, NbdError expected)
    {
        RawReply reply = await client.ReadReplyAsync();
        Assert.Equal(cookie, reply.Cookie);
        Assert.Equal(expected, reply.Error);
        Assert.True(reply.IsDone);
        return reply;
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task ReadPastTheEndIsEinval(ReplyStyle style)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size), style);
        await server.Client.SendRequestAsync(NbdCommand.Read, Size - 100, 200, cookie: 1);
        await ErrorReplyAsync(server.Client, 1, NbdError.Invalid);
        await server.Client.SendRequestAsync(NbdCommand.Read, Size, 1, cookie: 2);
        await ErrorReplyAsync(server.Client, 2, NbdError.Invalid);
        await AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    [InlineData(ReplyStyle.Extended)]
    public async Task WritePastTheEndIsEnospcAndItsPayloadIsConsumed(ReplyStyle style)
    {
        var device = new MemoryDevice(Size);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style);
        await server.Client.SendWriteAsync(Size - 100, SimpleReplyTests.Pattern(200), cookie: 1);
        await ErrorReplyAsync(server.Client, 1, NbdError.NoSpace);
        await AssertInSyncAsync(server.Client);
        Assert.Equal(0, device.CommittedBytes);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(NbdCommand.Read, 0xFFFF_FFFF_FFFF_FFFFul, 1u, NbdError.Invalid)]
    [InlineData(NbdCommand.Read, 0xFFFF_FFFF_FFFF_F800ul, 4096u, NbdError.Invalid)]
    [InlineData(NbdCommand.Write, 0xFFFF_FFFF_FFFF_FFFFul, 1u, NbdError.NoSpace)]
    [InlineData(NbdCommand.Write, 0xFFFF_FFFF_FFFF_F800ul, 4096u, NbdError.NoSpace)]
    [InlineData(NbdCommand.Trim, 0xFFFF_FFFF_FFFF_F800ul, 4096u, NbdError.Invalid)]
    [InlineData(NbdCommand.WriteZeroes, 0xFFFF_FFFF_FFFF_F800ul, 4096u, NbdError.NoSpace)]
    [InlineData(NbdCommand.Cache, 0xFFFF_FFFF_FFFF_F800ul, 4096u, NbdError.Invalid)]
    [InlineData(NbdCommand.Read, 0x8000_0000_0000_0000ul, 4096u, NbdError.Invalid)]
    public async Task OffsetsThatWrapAroundAreRefused(NbdCommand command, ulong offset, uint length, NbdError expected)
    {
        var device = new MemoryDevice(Size);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        byte[] payload = command == NbdCommand.Write ? new byte[length] : [];
        await server.Client.SendRequestAsync(command, offset, length, cookie: 7, payload: payload);
        await ErrorReplyAsync(server.Client, 7, expected);
        await AssertInSyncAsync(server.Client);
        Assert.Equal(0, device.CommittedBytes);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Structured)]
    public async Task ReadLongerThanTheMaximumPayloadIsEoverflow(ReplyStyle style)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(64L * MiB), style);
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 32 * MiB + 1, cookie: 1);
        await ErrorReplyAsync(server.Client, 1, NbdError.Overflow);
        await AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task ReadOfExactlyTheMaximumPayloadAtTheLastOffsetSucceeds()
    {
        var device = new MemoryDevice(64L * MiB);
        device.Write(64L * MiB - 1, [0x42]);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        await server.Client.SendRequestAsync(NbdCommand.Read, 32 * MiB, 32 * MiB, cookie: 1);
        RawReply reply = await server.Client.ReadReplyAsync(32 * MiB);
        Assert.Equal(NbdError.None, reply.Error);
        Assert.Equal(0x42, reply.Payload[^1]);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(ReplyStyle.Simple)]
    [InlineData(ReplyStyle.Extended)]
    public async Task WriteOf33MiBIsDrainedAndRefusedWithEoverflow(ReplyStyle style)
    {
        var device = new MemoryDevice(64L * MiB);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device, style);
        byte[] payload = new byte[33 * MiB];
        Array.Fill(payload, (byte)0xAB);
        await server.Client.SendWriteAsync(0, payload, cookie: 1);
        await ErrorReplyAsync(server.Client, 1, NbdError.Overflow);
        await AssertInSyncAsync(server.Client);
        Assert.Equal(0, device.CommittedBytes);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData((ushort)0x55)]
    [InlineData((ushort)NbdCommand.Resize)]
    [InlineData((ushort)0xFFFF)]
    public async Task UnknownCommandIsEinval(ushort command)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size));
        await server.Client.SendRequestAsync(command, 0, 512, cookie: 3);
        await ErrorReplyAsync(server.Client, 3, NbdError.Invalid);
        await AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(NbdCommand.Write, NbdCommandFlags.NoHole)]
    [InlineData(NbdCommand.Write, NbdCommandFlags.DontFragment)]
    [InlineData(NbdCommand.Write, NbdCommandFlags.PayloadLen)] // only valid with extended headers
    [InlineData(NbdCommand.Read, NbdCommandFlags.ReqOne)]
    [InlineData(NbdCommand.Read, NbdCommandFlags.DontFragment)] // DF needs structured replies
    [InlineData(NbdCommand.Read, (NbdCommandFlags)0x8000)]
    [InlineData(NbdCommand.Trim, NbdCommandFlags.FastZero)]
    [InlineData(NbdCommand.Flush, NbdCommandFlags.NoHole)]
    [InlineData(NbdCommand.Cache, NbdCommandFlags.ReqOne)]
    public async Task FlagNotValidForTheCommandIsEinval(NbdCommand command, NbdCommandFlags flags)
    {
        var device = new MemoryDevice(Size);
        await using TransmissionServer server = await TransmissionServer.StartAsync(device);
        uint length = command == NbdCommand.Flush ? 0u : 512u;
        byte[] payload = command == NbdCommand.Write ? SimpleReplyTests.Pattern(512) : [];
        await server.Client.SendRequestAsync(command, 0, length, cookie: 4, flags, payload);
        await ErrorReplyAsync(server.Client, 4, NbdError.Invalid);
        await AssertInSyncAsync(server.Client);
        Assert.Equal(0, device.CommittedBytes);
        await server.DisconnectAsync();
    }

    [Fact]
    public async Task FuaOnAReadIsAcceptedWhenAdvertised()
    {
        // The spec: with NBD_FLAG_SEND_FUA the server MUST accept FUA on all commands.
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size));
        await server.Client.SendRequestAsync(NbdCommand.Read, 0, 16, cookie: 1, NbdCommandFlags.Fua);
        RawReply reply = await server.Client.ReadReplyAsync(16);
        Assert.Equal(NbdError.None, reply.Error);
        await server.DisconnectAsync();
    }

    [Theory]
    [InlineData(4096ul, 0u)]
    [InlineData(0ul, 4096u)]
    public async Task FlushWithNonZeroOffsetOrLengthIsEinval(ulong offset, uint length)
    {
        await using TransmissionServer server = await TransmissionServer.StartAsync(new MemoryDevice(Size));
        await server.Client.SendRequestAsync(NbdCommand.Flush, offset, length, cookie: 5);
        await ErrorReplyAsync(server.Client, 5, NbdError.Invalid);
        await AssertInSyncAsync(server.Client);
        await server.DisconnectAsync();
    }
}
