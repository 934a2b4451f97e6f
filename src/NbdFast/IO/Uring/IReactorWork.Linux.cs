namespace NbdFast.IO.Uring;

/// <summary>Work another thread hands to a reactor; it runs on the reactor thread.</summary>
internal interface IReactorWork
{
    void Run(Reactor reactor);
}
