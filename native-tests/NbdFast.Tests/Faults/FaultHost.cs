using System.Net;
using System.Net.Sockets;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Faults;

/// <summary>Linux errno values the fault tests inject.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int EIO = 5;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int EDQUOT = 122;
}

/// <summary>Raw clients for an <see cref="InProcessServer"/>, and the check that a server let go of everything.</summary>
internal static class FaultHost
{
    /// <summary>Opens a raw connection to <paramref name="server"/> (TCP or its unix socket).</summary>
    public static async Task<RawNbdClient> ConnectAsync(InProcessServer server)
    {
        Socket socket = server.SocketPath is null
            ? new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }
            : new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            EndPoint endPoint = server.SocketPath is string path ? new UnixDomainSocketEndPoint(path) : new IPEndPoint(IPAddress.Loopback, server.Port);
            await socket.ConnectAsync(endPoint).WaitAsync(RawNbdClient.DefaultTimeout);
            return new RawNbdClient(new NetworkStream(socket, ownsSocket: true), socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects and negotiates (optionally structured replies), then GO.</summary>
    public static async Task<RawNbdClient> NegotiateAsync(InProcessServer server, bool structured = false)
    {
        RawNbdClient client = await ConnectAsync(server);
        try
        {
            await client.StartAsync();
            if (structured)
            {
                RawNbdClient.AssertAck(await client.OptionAsync(NbdOption.StructuredReply), NbdOption.StructuredReply);
            }
            await client.GoAsync("");
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Closes the client at once with a TCP reset (or a plain close on a unix socket).</summary>
    public static async Task ResetAsync(RawNbdClient client)
    {
        if (client.Socket!.AddressFamily != AddressFamily.Unix)
        {
            client.Socket.LingerState = new LingerOption(true, 0);
        }
        client.Socket.Close();
        await client.DisposeAsync();
    }

    /// <summary>
    /// Waits until the server has closed every connection (without an unexpected error), then, on io_uring, until
    /// the reactors own no connection and no rented buffer: nothing leaked by whatever the test did.
    /// </summary>
    public static async Task AssertReleasedAsync(InProcessServer server)
    {
        await server.AssertNoErrorsAsync();
        if (server.Engine is not NbdUringEngine engine)
        {
            return;
        }
        (int Connections, long BufferBytes) left = default;
        for (int i = 0; i < 100; i++)
        {
            left = await engine.MeasureResourcesAsync();
            if (left == (0, 0))
            {
                return;
            }
            await Task.Delay(100);
        }
        Assert.Fail($"io_uring reactors still own {left.Connections} connections and {left.BufferBytes} rented buffer bytes");
    }

    /// <summary>Sends DISC and waits for the server to close.</summary>
    public static async Task DisconnectAsync(RawNbdClient client)
    {
        await client.SendDisconnectAsync();
        await client.AssertClosedAsync();
        await client.DisposeAsync();
    }

    /// <summary>A recognisable 4 KiB-aligned pattern: every 8 bytes hold their own offset plus <paramref name="salt"/>.</summary>
    public static byte[] Pattern(long offset, int length, ulong salt = 0)
    {
        byte[] data = new byte[length];
        for (int i = 0; i + 8 <= length; i += 8)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(i), (ulong)(offset + i) ^ salt);
        }
        return data;
    }
}
