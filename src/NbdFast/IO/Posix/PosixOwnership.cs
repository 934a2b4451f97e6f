using System.Runtime.InteropServices;

namespace NbdFast.IO.Posix;

/// <summary>chown(2), which .NET does not expose; used to hand a unix socket to the group its clients run as.</summary>
internal static partial class PosixOwnership
{
    /// <summary>Sets the owner and group of <paramref name="path"/>; -1 (as uint) keeps either unchanged.</summary>
    /// <exception cref="IOException">The call failed; HResult is the errno.</exception>
    public static void ChangeOwner(string path, uint userId, uint groupId)
    {
        if (chown(path, userId, groupId) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"chown {path}: {Marshal.GetPInvokeErrorMessage(errno)}", errno);
        }
    }

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chown(string path, uint owner, uint group);
}
