using System.Net;
using System.Net.Sockets;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Interop.Tests.Support;

/// <summary>
/// The raw test client (linked from NbdFast.Tests, with its assertions in RawNbdClient.Assertions.cs) pointed
/// at a running nbdfast.
/// </summary>
internal static class RawClients
{
    /// <summary>Opens a raw connection to <paramref name="server"/> (TCP or its unix socket); nothing is read yet.</summary>
    public static async Task<RawNbdClient> ConnectAsync(NbdfastProcess server)
    {
        Socket socket = server.SocketPath is string path
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            EndPoint endPoint = server.SocketPath is string unix
                ? new UnixDomainSocketEndPoint(unix)
                : new IPEndPoint(IPAddress.Loopback, server.Port!.Value);
            await socket.ConnectAsync(endPoint).WaitAsync(RawNbdClient.DefaultTimeout).ConfigureAwait(false);
            return new RawNbdClient(new NetworkStream(socket, ownsSocket: true), socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Connects, does the fixed-newstyle handshake (optionally structured replies) and GO on the default export.</summary>
    public static async Task<(RawNbdClient Client, RawExportInfo Export)> NegotiateAsync(NbdfastProcess server, bool structured = false)
    {
        RawNbdClient client = await ConnectAsync(server).ConfigureAwait(false);
        try
        {
            await client.StartAsync().ConfigureAwait(false);
            if (structured)
            {
                RawNbdClient.AssertAck(await client.OptionAsync(NbdOption.StructuredReply).ConfigureAwait(false), NbdOption.StructuredReply);
            }
            RawExportInfo export = await client.GoAsync("").ConfigureAwait(false);
            return (client, export);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Sends <paramref name="count"/> back-to-back READs of <paramref name="length"/> bytes (cookie i reads the
    /// i-th stretch from offset 0) in one write, then reads nothing for a second: the replies pile up behind a
    /// full socket while the server still holds what it has not sent.
    /// </summary>
    public static async Task QueueReadsThenPauseAsync(RawNbdClient client, int count, int length)
    {
        byte[] queue = [.. Enumerable.Range(0, count).SelectMany(i =>
            client.EncodeRequest((ushort)NbdCommand.Read, (ulong)i * (ulong)length, (ulong)length, cookie: (ulong)i))];
        await client.WriteAsync(queue).ConfigureAwait(false);
        await Task.Delay(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
    }
}
