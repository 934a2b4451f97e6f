using System.Globalization;
using System.Net.Sockets;
using NbdFast.IO.Posix;

namespace NbdFast.Cli.Listening;

/// <summary>A unix-domain listening socket, with the permissions and owner the operator asked for.</summary>
internal static class UnixListener
{
    public static Socket Open(string path, UnixFileMode? mode, string? owner)
    {
        // A socket left by a previous run would make bind fail; anything else at that path is kept, and so is a
        // socket another server is still listening on.
        if (PosixFile.IsSocket(path))
        {
            if (IsListenedOn(path))
            {
                throw new IOException($"{path} is in use by another server");
            }
            File.Delete(path);
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            // Permissions and owner are set before listen(), so no client can connect in between.
            if (mode is UnixFileMode bits && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(path, bits);
            }
            if (owner is not null)
            {
                (uint user, uint group) = ResolveOwner(owner);
                PosixOwnership.ChangeOwner(path, user, group);
            }
            socket.Listen(128);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static bool IsListenedOn(string path)
    {
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false; // ECONNREFUSED: nobody listens, the file is stale
        }
    }

    /// <summary>USER[:GROUP] by name (from /etc/passwd and /etc/group) or number; a missing part stays unchanged.</summary>
    public static (uint User, uint Group) ResolveOwner(string owner)
    {
        int colon = owner.IndexOf(':', StringComparison.Ordinal);
        string user = colon < 0 ? owner : owner[..colon];
        string group = colon < 0 ? string.Empty : owner[(colon + 1)..];
        return (Lookup(user, "/etc/passwd", "user"), Lookup(group, "/etc/group", "group"));
    }

    private static uint Lookup(string name, string database, string what)
    {
        if (name.Length == 0)
        {
            return uint.MaxValue;
        }
        if (uint.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out uint id))
        {
            return id;
        }
        IEnumerable<string> lines;
        try
        {
            lines = File.ReadAllLines(database);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--unix-owner: cannot look up {what} '{name}' ({e.Message}); give a number");
        }
        foreach (string line in lines)
        {
            string[] fields = line.Split(':');
            if (fields.Length > 2 && fields[0] == name && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out id))
            {
                return id;
            }
        }
        throw new UsageException($"--unix-owner: no {what} named '{name}'");
    }
}
