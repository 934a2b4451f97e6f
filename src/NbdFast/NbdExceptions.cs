namespace NbdFast;

/// <summary>The client ended the handshake with NBD_OPT_ABORT (a soft disconnect); its ACK has been sent.</summary>
public sealed class ClientRequestedAbortException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ClientRequestedAbortException() : base("The client requested an abort (NBD_OPT_ABORT).")
    {
    }
}

/// <summary>
/// The client broke the protocol in a way that forbids an error reply (bad magic, unknown client flags,
/// oversized option, truncated message, handshake deadline): the connection must be closed.
/// </summary>
public sealed class NbdProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public NbdProtocolException(string message, Exception? inner = null) : base(message, inner)
    {
    }
}
